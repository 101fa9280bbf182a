"""The wheel carries the repository's data folders inside the package; everything else is in pyproject.toml.

``lalo_bench/datafiles.py`` names the files (``SHIPPED``) and finds them again at run time, under
``lalo_bench/_data/`` in a wheel. An editable install reads them from the checkout, so it copies nothing. The sdist
holds them at their repository paths, so a wheel built from it has them too.
"""

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent


def _datafiles():
    spec = importlib.util.spec_from_file_location("_lalo_datafiles", ROOT / "lalo_bench" / "datafiles.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        datafiles = _datafiles()
        target = Path(self.build_lib) / datafiles.PACKAGE / datafiles.PACKAGE_DATA
        for name in datafiles.shipped_files(ROOT):
            dest = target / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, dest)


class SdistWithData(sdist):
    """The sdist holds the same data files, so a wheel built from it (``python -m build``) is complete too."""

    def make_distribution(self) -> None:  # setuptools takes its file list from egg_info; this adds to it
        self.filelist.extend(_datafiles().shipped_files(ROOT))
        super().make_distribution()


setup(cmdclass={"build_py": BuildPyWithData, "sdist": SdistWithData})

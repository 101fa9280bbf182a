"""Client reports: evidence from MLflow, figures, papermill notebooks, HTML."""

"""Hardware tiers: memory fit, the roofline projection, the STREAM triad and calibration from measured cells."""

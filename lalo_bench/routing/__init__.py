"""Routing: score a request's need for a stronger model, cut the score at calibrated thresholds, pick a model.

Modules, one job each: ``cost`` (what an item costs, defined once), ``outcomes`` (per-item results of a
ladder, read from a sweep), ``features`` (routing text, TF-IDF, MiniLM embeddings), ``routers`` (keyword,
task type, learned, random; the oracle), ``calibrate`` (thresholds for an objective), ``curves`` (APGR,
CPT, envelopes, bootstrap), ``compare`` (the comparison table), ``policy`` (the versioned
``routing_policy.json``), ``runtime`` (a loaded policy routing live requests) and ``pipeline``
(``lalo-bench route calibrate``).
"""

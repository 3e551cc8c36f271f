"""Hostile-input corpus (:mod:`.make_corpus`) and the cached seed models (:mod:`.seeds`)."""

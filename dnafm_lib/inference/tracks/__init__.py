"""The tracks of a genome: plan chunks (``tiling``, ``pipeline``) → score each chunk (``scoring``,
``chunk_arrays``) → gather one file per track (``gather``, ``writers``, ``embeddings``) → browser
files (``igv``, ``hub``, ``legend``, ``logo``); ``catalog`` is the one list of track files and
``provenance`` what made them (``tracks.json``).
"""

"""The tracks of a genome, as four steps, each one function that the Snakemake rules (through
``dnafm tracks plan|score|gather|browser``) and the one-shot run (``one_shot.run_genome``, the
``dnafm tracks`` command) both call: ``plan.write_chunk_plan`` cuts the genome into chunks
(``tiling``) → ``score.score_chunk`` scores one chunk into a chunk file (``scoring``,
``chunk_arrays``; the model's forward pass: ``inference.masked``) → ``gather.gather_tracks`` writes
one file per track (``writers``, ``embeddings``) → ``browser.write_browser_files`` writes the IGV
session, igv.html and a UCSC hub (``igv``, ``hub``, ``legend``, ``logo``). ``catalog`` is the one
list of track files and ``provenance`` what made them (``tracks.json``); ``scoring.ScoringSettings``
owns the scoring defaults.
"""

"""Invariants of model loading and genome downloads (a real HTTP server on 127.0.0.1).

Checkpoint loading (``checkpoint.load_model``):
  C1. the MLM decoder is tied to the word embeddings: a file whose decoder weight (or bias)
      differs from the embeddings (or ``cls.predictions.bias``) is refused, naming both keys —
      never loaded with one of the two silently dropped.
Downloads (``http.HttpClient``, ``ncbi.download_assembly``):
  H1. every 5xx answer is retried (500 through 599), for API calls and file downloads alike;
  H2. a 4xx other than 429 is not retried: one request, one error naming the URL and status;
  H3. from a Datasets zip only the genome's genomic FASTA is taken: not CDS, RNA or protein
      sequences, annotation, reports, nor another accession's files.
"""

from __future__ import annotations

import gzip
import json

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from dnafm_lib.data.http import HttpError, RetryPolicy
from dnafm_lib.data.ncbi import NcbiClient, download_assembly
from dnafm_lib.model.model_dir import CHECKSUM_KEY, CheckpointError, load_model, save_model
from tests.support.ncbi_server import FakeAssembly, FakeNcbi, synthetic_fasta

ACCESSION, ASSEMBLY = "GCF_015227675.2", "mRatBN7.2"
FAST_RETRY = RetryPolicy(max_attempts=3, backoff_initial_s=0.001, backoff_max_s=0.002)
PROPERTY = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- tied head


@pytest.mark.parametrize(
    "decoder_key, tied_to",
    [
        ("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),
        ("cls.predictions.decoder.bias", "cls.predictions.bias"),
    ],
)
def test_a_decoder_that_differs_from_what_it_is_tied_to_is_refused(tmp_path, decoder_key, tied_to):
    save_model(load_model("tiny", seed=2), tmp_path / "m")
    state = load_file(tmp_path / "m" / "model.safetensors")
    untied = state[tied_to].clone()
    untied.view(-1)[0] += 1.0  # one number off is enough to be another model
    state[decoder_key] = untied
    save_file(state, tmp_path / "m" / "model.safetensors")
    # As a published checkpoint would be: no weights checksum in config.json, so the tie check,
    # not the checksum, must refuse it.
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config.pop(CHECKSUM_KEY, None)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=f"{decoder_key} differs from {tied_to}"):
        load_model(tmp_path / "m")


def test_the_loaded_decoder_is_the_embedding_matrix(tmp_path):
    model = load_model("tiny", seed=4)
    save_model(model, tmp_path / "m")
    again = load_model(tmp_path / "m").eval()
    ids = torch.tensor([[2, 5, 6, 7, 8, 10, 12]])
    with torch.no_grad():
        hidden = again(ids).last_hidden_state
        logits = again(ids).logits
        head = again.cls.predictions
        expected = head(hidden, again.bert.embeddings.word_embeddings.weight)
    torch.testing.assert_close(logits, expected)


# --------------------------------------------------------------------------- retries


@pytest.fixture(scope="module")
def ncbi():
    fake = FakeNcbi().start()
    fake.add(FakeAssembly(ACCESSION, ASSEMBLY, fasta=synthetic_fasta(seed=1, contig_bp=(3000, 700))))
    yield fake
    fake.stop()


def _client(ncbi) -> NcbiClient:
    return NcbiClient(
        ftp_url=ncbi.ftp_url, api_url=ncbi.api_url, retry=FAST_RETRY, progress=False, requests_per_s=10_000
    )


@PROPERTY
@given(st.integers(500, 599))
@example(500)
@example(599)
def test_every_server_error_is_retried_for_reports_and_files(ncbi, tmp_path_factory, status):
    ncbi.hits.clear()
    ncbi.inject("dataset_report", "status", status)
    ncbi.inject("_genomic.fna.gz", "status", status)
    out = tmp_path_factory.mktemp("dl") / "rat"
    result = download_assembly(ACCESSION, out, client=_client(ncbi))
    with gzip.open(result.fasta_path, "rb") as handle:
        assert handle.read() == ncbi.assemblies[ACCESSION].fasta
    assert [h.status for h in ncbi.hits_for("dataset_report")] == [status, 200]
    assert [h.status for h in ncbi.hits_for("_genomic.fna.gz")] == [status, 200]


@PROPERTY
@given(st.sampled_from([400, 401, 403, 404, 410, 418, 451]))
def test_a_client_error_is_not_retried(ncbi, status):
    ncbi.hits.clear()
    ncbi.inject("dataset_report", "status", status)
    with pytest.raises(HttpError, match=f"dataset_report.*{status}"):
        _client(ncbi).assembly_report(ACCESSION)
    assert [h.status for h in ncbi.hits_for("dataset_report")] == [status]


# --------------------------------------------------------------------------- the Datasets zip


def test_only_the_genomic_fasta_is_taken_from_a_datasets_zip(ncbi, tmp_path):
    assembly = ncbi.assemblies[ACCESSION]
    here = f"ncbi_dataset/data/{ACCESSION}"
    other = "GCF_000001405.40"
    decoy = b">decoy\nTTTTTTTTTT\n"
    assembly.zip_extra_entries.update(
        {
            f"{here}/cds_from_genomic.fna": decoy,
            f"{here}/rna.fna": decoy,
            f"{here}/protein.faa": decoy,
            f"{here}/genomic.gff": b"##gff-version 3\n",
            f"{here}/sequence_report.jsonl": b"{}\n",
            f"ncbi_dataset/data/{other}/{other}_GRCh38.p14_genomic.fna": decoy,
            f"ncbi_dataset/data/{ACCESSION}.fna": decoy,
        }
    )
    try:
        result = download_assembly(ACCESSION, tmp_path / "rat", source="datasets", client=_client(ncbi))
    finally:
        assembly.zip_extra_entries.clear()
    with gzip.open(result.fasta_path, "rb") as handle:
        assert handle.read() == assembly.fasta

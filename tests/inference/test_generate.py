"""`dnafm generate`: masked-diffusion sampling, in-painting and guidance with the MLM encoder.

The sampler is checked against what a user notices: the same seed gives the same file, kept
bases never change, a model that learned a period regenerates it (an untrained one does not),
and a guide steers the samples toward its target.
"""

import os
import signal
import subprocess

import numpy as np
import pytest
import torch
from Bio import SeqIO

import dnafm_lib
from dnafm_lib.cli import build_parser, main
from dnafm_lib.finetune import SequenceClassification
from dnafm_lib.inference.generate import (
    SamplerSettings,
    committed_after_each_step,
    filtered_log_probs,
    generate,
    load_guide,
    template_from_region,
    template_from_string,
    unconditional_template,
)
from dnafm_lib.model.encoder import ModelConfig, build_model
from dnafm_lib.model.tokenizer import MASK_ID, N_ID, PAD_ID, TOKEN_ID, encode, frame

CONTEXT_TOKENS = 128  # the small test model's context: longer requests must fail


def small_config(**overrides) -> ModelConfig:
    settings = dict(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=CONTEXT_TOKENS,
    )
    return ModelConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(11)
    path = tmp_path_factory.mktemp("model") / "small"
    dnafm_lib.save_model(build_model(small_config()), path)
    return path


@pytest.fixture(scope="module")
def model(model_dir):
    return dnafm_lib.load_model(model_dir)


def read_fasta(path):
    return [(record.description, str(record.seq)) for record in SeqIO.parse(str(path), "fasta")]


def read_tsv(path):
    lines = path.read_text().splitlines()
    columns = lines[0].split("\t")
    return [dict(zip(columns, line.split("\t"))) for line in lines[1:]]


def run_cli(capsys, *args):
    code = main(["generate", *map(str, args)])
    return code, capsys.readouterr().err


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".tmp-"))


def period_match(sequence: str, period: int) -> float:
    """Fraction of positions whose base equals the one ``period`` bases on (≈0.25 for random DNA)."""
    codes = np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)
    return float((codes[period:] == codes[:-period]).mean())


# ---------------------------------------------------------------------- reproducibility


def test_same_seed_writes_the_same_files_and_another_seed_other_sequences(model_dir, tmp_path, capsys):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        code, err = run_cli(
            capsys,
            "--model",
            model_dir,
            "--length",
            50,
            "--n-samples",
            4,
            "--steps",
            8,
            "--seed",
            seed,
            "--out",
            tmp_path / f"{name}.fa",
        )
        assert code == 0, err
    assert (tmp_path / "a.fa").read_bytes() == (tmp_path / "b.fa").read_bytes()
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()
    first = [seq for _, seq in read_fasta(tmp_path / "a.fa")]
    other = [seq for _, seq in read_fasta(tmp_path / "c.fa")]
    assert len(first) == 4 and all(len(seq) == 50 for seq in first)
    assert len(set(first)) == 4, "samples of one run must differ from each other"
    assert not set(first) & set(other)


def test_a_sample_does_not_depend_on_the_batch_it_was_drawn_in(model):
    settings = dict(steps=6, seed=9)
    alone = generate(model, unconditional_template(40), 5, SamplerSettings(batch_size=1, **settings))
    together = generate(model, unconditional_template(40), 5, SamplerSettings(batch_size=5, **settings))
    fewer = generate(model, unconditional_template(40), 2, SamplerSettings(batch_size=5, **settings))
    assert [s.sequence for s in alone] == [s.sequence for s in together]
    assert [s.sequence for s in fewer] == [s.sequence for s in together[:2]]


# ---------------------------------------------------------------------- in-painting


def test_inpainting_a_template_never_changes_a_kept_base(model_dir, tmp_path, capsys):
    template = "acgtACGTNNNNNNNNNNggccTTAANNNNNNNNNNNNNNacgtAC"
    code, err = run_cli(
        capsys,
        "--model",
        model_dir,
        "--template",
        template,
        "--n-samples",
        6,
        "--steps",
        5,
        "--temperature",
        1.5,
        "--out",
        tmp_path / "filled.fa",
    )
    assert code == 0, err
    samples = read_fasta(tmp_path / "filled.fa")
    assert len(samples) == 6
    fill = [base == "N" for base in template]
    for header, sequence in samples:
        assert len(sequence) == len(template)
        assert [b for b, f in zip(sequence, fill) if not f] == [b for b, f in zip(template, fill) if not f]
        assert set(b for b, f in zip(sequence, fill) if f) <= set("ACGT")
        assert f"template_nt={len(template)}" in header and f"generated_nt={sum(fill)}" in header
    assert len({seq for _, seq in samples}) > 1
    rows = read_tsv(tmp_path / "filled.tsv")
    assert [int(row["generated_nt"]) for row in rows] == [sum(fill)] * 6


def test_inpainting_a_fasta_region_keeps_its_bases_and_fills_the_mask_region(model_dir, tmp_path, capsys):
    rng = np.random.default_rng(5)
    contig = "".join(rng.choice(list("ACGTacgt"), 300))
    contig = contig[:150] + "NNNNN" + contig[155:]  # an assembly gap is filled too
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chrA first\n" + "\n".join(contig[i : i + 60] for i in range(0, 300, 60)) + "\n>chrB\nACGT\n")
    code, err = run_cli(
        capsys,
        "--model",
        model_dir,
        "--fasta",
        fasta,
        "--region",
        "chrA:101-200",
        "--mask-region",
        "chrA:111-120",
        "--mask-region",
        "181-190",
        "--n-samples",
        3,
        "--steps",
        4,
        "--out",
        tmp_path / "region.fa",
    )
    assert code == 0, err
    region = contig[100:200]
    filled = set(range(10, 20)) | set(range(80, 90)) | set(range(50, 55))
    for header, sequence in read_fasta(tmp_path / "region.fa"):
        assert "region=chrA:101-200" in header and "mask_region=chrA:111-120,181-190" in header
        assert all(sequence[i] == region[i] for i in range(100) if i not in filled)  # case included
        assert all(sequence[i] in "ACGT" for i in filled)
        assert "N" not in sequence


def test_a_region_of_a_plain_gzip_fasta_is_read_as_ncbi_serves_it(tmp_path, monkeypatch):
    import gzip

    monkeypatch.setenv("DNAFM_CACHE_DIR", str(tmp_path / "cache"))
    contig = "".join(np.random.default_rng(6).choice(list("ACGT"), 500))
    fasta = tmp_path / "genome.fna.gz"
    with gzip.open(fasta, "wt") as handle:  # plain gzip, not bgzip
        handle.write(">chrA\n" + "\n".join(contig[i : i + 80] for i in range(0, 500, 80)) + "\n")
    template = template_from_region(fasta, "chrA:101-200")
    assert template.text == contig[100:200] and template.n_fill == 0


def test_only_acgt_is_drawn_even_when_the_model_prefers_special_tokens(model_dir):
    model = dnafm_lib.load_model(model_dir)
    with torch.no_grad():
        for token in (PAD_ID, MASK_ID, N_ID, TOKEN_ID["[UNK]"], TOKEN_ID["U"]):
            model.cls.predictions.bias[token] = 50.0
    samples = generate(model, unconditional_template(60), 3, SamplerSettings(steps=5, temperature=2.0))
    for sample in samples:
        assert set(sample.sequence) <= set("ACGT")
        assert np.isfinite(sample.mean_log_likelihood) and sample.mean_log_likelihood < 0


# ---------------------------------------------------------------------- the sampler's parts


@pytest.mark.parametrize("schedule", ["cosine", "linear"])
def test_every_step_commits_and_the_last_one_fills_everything(schedule):
    counts = committed_after_each_step(100, 10, schedule)
    assert len(counts) == 10 and counts[-1] == 100
    assert all(b > a for a, b in zip([0] + counts, counts))
    assert committed_after_each_step(3, 10, schedule) == [1, 2, 3]  # more steps than bases: one per step
    if schedule == "cosine":
        assert counts[0] < 10 < counts[-2] and counts[-1] - counts[-2] > 10  # few early, many late
    else:
        assert counts == list(range(10, 101, 10))


def test_top_k_and_top_p_cut_the_unlikely_bases():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    top2 = filtered_log_probs(logits, SamplerSettings(top_k=2)).exp()
    assert torch.allclose(top2, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
    nucleus = filtered_log_probs(logits, SamplerSettings(top_p=0.7)).exp()  # 0.5 + 0.3 reach 0.7
    assert torch.allclose(nucleus, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
    tiny_p = filtered_log_probs(logits, SamplerSettings(top_p=0.01)).exp()  # the best base always stays
    assert torch.allclose(tiny_p, torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    hot = filtered_log_probs(logits, SamplerSettings(temperature=1e6)).exp()
    assert torch.allclose(hot, torch.full((1, 4), 0.25), atol=1e-4)


def test_temperature_zero_leaves_nothing_to_chance(model):
    template = template_from_string("ACGTNNNNNNNNNNNNNNNNNNNNACGT")
    greedy = generate(model, template, 3, SamplerSettings(steps=6, temperature=0, seed=1))
    other_seed = generate(model, template, 1, SamplerSettings(steps=6, temperature=0, seed=2))
    assert greedy[0].sequence == greedy[1].sequence == greedy[2].sequence == other_seed[0].sequence


# ---------------------------------------------------------------------- outputs


def test_headers_hold_the_settings_and_the_table_the_per_sample_numbers(model_dir, tmp_path, capsys):
    code, err = run_cli(
        capsys,
        "--model",
        model_dir,
        "--length",
        70,
        "--n-samples",
        3,
        "--steps",
        7,
        "--schedule",
        "linear",
        "--temperature",
        0.8,
        "--top-k",
        3,
        "--top-p",
        0.9,
        "--seed",
        21,
        "--out",
        tmp_path / "out" / "samples.fasta",
        "--tsv",
        tmp_path / "out" / "table.tsv",
    )
    assert code == 0, err
    samples = read_fasta(tmp_path / "out" / "samples.fasta")
    rows = read_tsv(tmp_path / "out" / "table.tsv")
    assert [h.split()[0] for h, _ in samples] == [row["sample"] for row in rows] == ["sample_1", "sample_2", "sample_3"]
    for (header, sequence), row in zip(samples, rows):
        for setting in (
            "length=70",
            "steps=7",
            "schedule=linear",
            "temperature=0.8",
            "top_k=3",
            "top_p=0.9",
            "seed=21",
            f"model={model_dir}",
        ):
            assert setting in header.split(), setting
        gc = (sequence.count("G") + sequence.count("C")) / len(sequence)
        assert float(row["gc_content"]) == pytest.approx(gc, abs=1e-5)
        assert float(row["gc_content_generated"]) == pytest.approx(gc, abs=1e-5)
        assert int(row["length"]) == 70 and int(row["generated_nt"]) == 70
        assert -np.log(4) * 3 < float(row["mean_log_likelihood_nats"]) < 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["samples.fasta", "table.tsv"]


def test_help_documents_every_option():
    parser = build_parser("generate")
    subparser = next(a for a in parser._actions if a.dest == "command").choices["generate"]
    text = subparser.format_help()
    documented = {s for action in subparser._actions for s in action.option_strings}
    for option in (
        "--model",
        "--out",
        "--tsv",
        "--length",
        "--n-samples",
        "--template",
        "--fasta",
        "--region",
        "--mask-region",
        "--steps",
        "--schedule",
        "--temperature",
        "--top-k",
        "--top-p",
        "--seed",
        "--batch-size",
        "--device",
        "--guide",
        "--target",
        "--guide-candidates",
    ):
        assert option in documented and option in text, option
    for action in subparser._actions:
        assert action.help, f"{action.option_strings} has no help text"
    assert "cosine" in text and "linear" in text


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--template", "ACGTNNXNNACGT"], "--template: offset 6: unexpected character 'X'"),
        (["--template", "ACGTRNNACGT"], "--template: offset 4: unexpected character 'R'"),
        (["--fasta", "{fasta}", "--region", "chr1:50-120"], "--region chr1:50-120: outside chr1 (length 100 bp)"),
        (["--fasta", "{fasta}", "--region", "chrZ:1-10"], "contig 'chrZ' is not in"),
        (["--fasta", "{fasta}", "--region", "chr1:10-20", "--mask-region", "chr1:5-15"], "outside --region chr1:10-20"),
        (
            ["--length", str(CONTEXT_TOKENS - 1)],
            f"--length {CONTEXT_TOKENS - 1}: {CONTEXT_TOKENS - 1} nt + [CLS]/[EOS] = {CONTEXT_TOKENS + 1} tokens "
            f"exceeds the context of --model",
        ),
        (["--template", "A" * 200 + "N"], f"({CONTEXT_TOKENS} tokens); at most {CONTEXT_TOKENS - 2} nt"),
        (["--template", "ACGTACGT"], "nothing to fill"),
        (["--length", "10", "--top-k", "5"], "--top-k must be 0 (off) or 1-4"),
        (["--length", "10", "--guide", "{fasta}"], "--guide and --target go together"),
    ],
)
def test_bad_requests_fail_with_one_line_and_leave_no_file(model_dir, tmp_path, capsys, arguments, message):
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chr1\n" + "ACGT" * 25 + "\n")
    out = tmp_path / "out" / "samples.fa"
    arguments = [a.format(fasta=fasta) for a in arguments]
    code, err = run_cli(capsys, "--model", model_dir, "--out", out, *arguments)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("dnafm generate: error: "), err
    assert message in err
    assert not out.exists() and not out.with_suffix(".tsv").exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())


def test_a_fine_tuned_checkpoint_is_no_generator_and_a_base_model_is_no_guide(model_dir, tmp_path, capsys):
    torch.manual_seed(0)
    classifier = SequenceClassification.from_config({"model.backbone": str(model_dir), "model.n_classes": 2})
    classifier.save(tmp_path / "clf")
    out = tmp_path / "s.fa"
    code, err = run_cli(capsys, "--model", tmp_path / "clf", "--length", 10, "--out", out)
    assert code == 1 and "a fine-tuned SequenceClassification checkpoint has no masked-LM head" in err
    code, err = run_cli(capsys, "--model", model_dir, "--length", 10, "--guide", model_dir, "--target", 1, "--out", out)
    assert code == 1 and "not a fine-tuned checkpoint (no task.json" in err
    code, err = run_cli(
        capsys, "--model", model_dir, "--length", 10, "--guide", tmp_path / "clf", "--target", 2, "--out", out
    )
    assert code == 1 and "--target 2: the classifier" in err and "has classes 0-1" in err
    assert not out.exists() and not leftovers(tmp_path)


@pytest.mark.slow
def test_a_killed_run_leaves_nothing_and_the_rerun_matches_an_uninterrupted_one(model_dir, tmp_path):
    args = [
        "dnafm",
        "generate",
        "--model",
        str(model_dir),
        "--length",
        "100",
        "--n-samples",
        "40",
        "--batch-size",
        "1",
        "--steps",
        "20",
        "--seed",
        "5",
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "killed" / "samples.fa"
    process = subprocess.Popen([*args, "--out", str(out)], stderr=subprocess.PIPE, text=True, env=env)
    line = process.stderr.readline()  # the first progress line: generation is under way
    assert line.startswith("generate: 1/40"), line
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and not out.with_suffix(".tsv").exists()
    rerun = subprocess.run([*args, "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    reference = tmp_path / "reference" / "samples.fa"
    done = subprocess.run([*args, "--out", str(reference)], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == reference.read_bytes()
    assert out.with_suffix(".tsv").read_bytes() == reference.with_suffix(".tsv").read_bytes()
    assert sorted(p.name for p in out.parent.iterdir()) == ["samples.fa", "samples.tsv"]


# ---------------------------------------------------------------------- the sampler uses the model


def train_on_period(model, unit: str, steps: int, window: int = 64, batch: int = 32, seed: int = 0):
    """Masked-diffusion training: each window masked at a ratio drawn from U(0, 1), loss on the masked bases."""
    sequence = encode(unit * (4 * window // len(unit) + 2))
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(unit), (batch,), generator=generator)  # every phase of the period
        clean = torch.stack([torch.from_numpy(frame(sequence[s : s + window])) for s in starts.tolist()])
        ratio = torch.rand(batch, 1, generator=generator)
        masked = torch.rand(clean.shape, generator=generator) < ratio
        masked[:, [0, -1]] = False
        logits = model(clean.masked_fill(masked, MASK_ID)).logits
        loss = torch.nn.functional.cross_entropy(logits[masked], clean[masked])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.mark.slow
def test_a_model_trained_on_a_period_regenerates_it_and_an_untrained_one_does_not():
    unit = "ACGTTGC"  # period 7 (prime: no shorter period hides in it)
    torch.manual_seed(0)
    untrained = build_model(small_config()).eval()
    torch.manual_seed(0)
    trained = train_on_period(build_model(small_config()), unit, steps=300)
    settings = SamplerSettings(steps=16, seed=1)
    chance = 0.25
    scores = {}
    for name, model in (("trained", trained), ("untrained", untrained)):
        samples = generate(model, unconditional_template(70), 8, settings)
        scores[name] = np.mean([period_match(s.sequence, len(unit)) for s in samples])
    assert scores["trained"] > 3 * chance, scores
    assert scores["untrained"] < chance + 0.15, scores


def gc_fraction(sequence: str) -> float:
    return (sequence.count("G") + sequence.count("C")) / len(sequence)


@pytest.fixture(scope="module")
def gc_classifier_dir(model_dir, tmp_path_factory):
    """A toy guide trained here: class 1 = GC-rich (fraction > 0.5), from 40-nt sequences of every GC level."""
    torch.manual_seed(0)
    classifier = SequenceClassification.from_config(
        {"model.backbone": str(model_dir), "model.n_classes": 2, "model.pooling": "mean", "model.pretrained": False}
    )
    rng = np.random.default_rng(0)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=3e-3)
    classifier.train()
    for _ in range(150):
        gc_levels = rng.uniform(0.05, 0.95, 32)
        sequences = [
            "".join(rng.choice(list("GCAT"), 40, p=[g / 2, g / 2, (1 - g) / 2, (1 - g) / 2])) for g in gc_levels
        ]
        collated = classifier.collate(
            {"sequences": sequences, "labels": [int(gc_fraction(s) > 0.5) for s in sequences]}
        )
        loss = classifier.loss(collated, classifier(collated))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    path = tmp_path_factory.mktemp("guide") / "gc"
    classifier.save(path)
    return path


@pytest.mark.slow
def test_guidance_raises_the_guide_score_over_unguided_samples(model, gc_classifier_dir):
    guide = load_guide(gc_classifier_dir, "1", torch.device("cpu"))
    checks = ["".join(np.random.default_rng(i).choice(list(bases), 40)) for i, bases in enumerate(["GC", "AT"])]
    ids = torch.stack([torch.from_numpy(frame(encode(s))) for s in checks])
    rich, poor = guide.values(ids, 8).tolist()
    assert rich > 0.9 and poor < 0.1, "the toy guide must have learned GC content"

    settings = SamplerSettings(steps=10, seed=2, guide_candidates=8)
    unguided = generate(model, unconditional_template(40), 12, settings)
    unguided_ids = torch.stack([torch.from_numpy(frame(encode(s.sequence))) for s in unguided])
    unguided_gc = np.mean([gc_fraction(s.sequence) for s in unguided])
    for target, sign in (("1", 1), ("0", -1)):  # toward GC-rich, then toward AT-rich
        guide = load_guide(gc_classifier_dir, target, torch.device("cpu"))
        guided = generate(model, unconditional_template(40), 12, settings, guide=guide)
        before = guide.values(unguided_ids, 16).numpy()  # p(target class) of the unguided samples
        after = np.array([s.guide_value for s in guided])
        log_odds = lambda p: np.log(p.clip(1e-6, 1 - 1e-6)) - np.log1p(-p.clip(1e-6, 1 - 1e-6))  # noqa: E731
        assert log_odds(after).mean() > log_odds(before).mean() + 1.0, (target, before, after)
        assert after.mean() > before.mean()
        assert sign * (np.mean([gc_fraction(s.sequence) for s in guided]) - unguided_gc) > 0.05, target


@pytest.mark.slow
def test_the_guide_score_is_in_the_table(model_dir, gc_classifier_dir, tmp_path, capsys):
    code, err = run_cli(
        capsys,
        "--model",
        model_dir,
        "--length",
        30,
        "--n-samples",
        2,
        "--steps",
        4,
        "--guide",
        gc_classifier_dir,
        "--target",
        1,
        "--guide-candidates",
        3,
        "--out",
        tmp_path / "g.fa",
    )
    assert code == 0, err
    rows = read_tsv(tmp_path / "g.tsv")
    assert all(0 <= float(row["guide_p_target"]) <= 1 for row in rows)
    for header, _ in read_fasta(tmp_path / "g.fa"):
        assert f"guide={gc_classifier_dir}" in header.split() and "target=1" in header.split()
        assert "guide_candidates=3" in header.split()

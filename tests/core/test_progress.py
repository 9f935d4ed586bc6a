"""Progress lines: bounded cadence (time and each tenth), work done of total, rate and ETA; a fake clock."""

from dnafm_lib.core.progress import Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _progress(total, **kwargs):
    clock, lines = FakeClock(), []
    return Progress("scoring chunk00003", total, unit="bases", clock=clock, write=lines.append, **kwargs), clock, lines


def test_a_line_says_done_of_total_rate_elapsed_and_eta():
    progress, clock, lines = _progress(1_000_000)
    clock.now += 403
    progress.update(420_000)
    assert lines == ["scoring chunk00003: 420,000/1,000,000 bases (42%), 1,042 bases/s, elapsed 0:06:43, ETA 0:09:17"]


def test_lines_come_at_each_tenth_and_every_30_s_but_not_at_every_update():
    progress, clock, lines = _progress(1000)
    for _ in range(1000):  # 1000 updates, 0.1 s apart: 100 s in all
        clock.now += 0.1
        progress.advance()
    progress.finish()
    percents = [line.split("(")[1].split(")")[0] for line in lines]
    assert percents == [f"{p}%" for p in range(10, 101, 10)]  # each tenth once; 10 s apart, so no timed lines

    slow, clock, lines = _progress(1000)
    for _ in range(9):  # 9 units, 10 s apart: under a tenth, so only the 30-s cadence speaks
        clock.now += 10
        slow.advance()
    assert [line.split(":")[1].split("/")[0].strip() for line in lines] == ["3", "6", "9"]


def test_a_job_under_a_second_writes_nothing_and_a_longer_one_its_end():
    quick, clock, lines = _progress(100)
    for _ in range(100):
        clock.now += 0.005
        quick.advance()
    quick.finish()
    assert lines == []  # a failing quick job still ends in its one error line

    longer, clock, lines = _progress(100)
    clock.now += 0.5
    longer.update(50)
    clock.now += 0.7
    longer.finish()
    assert lines == ["scoring chunk00003: 100/100 bases (100%), 83.3 bases/s, elapsed 0:00:01, ETA 0:00:00"]


def test_finish_writes_the_last_line_once_and_resumed_work_does_not_inflate_the_rate():
    progress, clock, lines = _progress(200, done=100)  # half done by an earlier run
    clock.now += 50
    progress.update(150)
    progress.finish()
    progress.finish()
    assert lines == [
        "scoring chunk00003: 150/200 bases (75%), 1 bases/s, elapsed 0:00:50, ETA 0:00:50",
        "scoring chunk00003: 200/200 bases (100%), 2 bases/s, elapsed 0:00:50, ETA 0:00:00",
    ]


def test_no_work_yet_gives_an_unknown_eta_and_an_empty_total_is_done():
    progress, clock, lines = _progress(10, every_s=0)
    progress.update(0)
    assert lines[-1].endswith("(0%), 0 bases/s, elapsed 0:00:00, ETA unknown")
    empty, clock, lines = _progress(0)
    clock.now += 2
    empty.finish()
    assert lines == ["scoring chunk00003: 0/0 bases (100%), 0 bases/s, elapsed 0:00:02, ETA 0:00:00"]


def test_durations_read_as_hours_minutes_seconds():
    assert [format_duration(s) for s in (0, 59.6, 3600, 90061)] == ["0:00:00", "0:01:00", "1:00:00", "25:01:01"]


def test_lines_go_to_stderr_by_default_at_the_cadence_the_environment_sets(capsys, monkeypatch):
    monkeypatch.setenv("DNAFM_PROGRESS_SECONDS", "0")  # a line at every update
    progress = Progress("gather", 2, unit="chunks", clock=FakeClock())
    progress.advance(2)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("gather: 2/2 chunks (100%)")

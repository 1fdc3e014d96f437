"""Progress off a terminal: no bar redraws, a log line at most every minute and one at the end."""

from __future__ import annotations

import logging

from allmrec_pipeline.progress import LoggedProgress, progress_bar


def test_off_a_terminal_progress_is_a_few_log_lines_not_redraws(capsys, caplog):
    # pytest's captured stderr is not a terminal, as a log file or CI is not
    with caplog.at_level(logging.INFO, logger="allmrec_pipeline.progress"):
        bar = progress_bar(range(5000), desc="steps", unit="step")
        assert isinstance(bar, LoggedProgress)
        for _ in bar:
            bar.set_postfix(refresh=False, loss="0.1234")
    assert "\r" not in capsys.readouterr().err  # no bar was drawn
    lines = [r.getMessage() for r in caplog.records if r.name == "allmrec_pipeline.progress"]
    assert lines == [lines[-1]] and lines[-1].startswith("steps: 5000/5000 step (")  # one line: the end
    assert lines[-1].endswith("100%) loss=0.1234")


def test_a_long_loop_logs_periodically_and_by_hand_updates_count():
    logged = []
    bar = LoggedProgress(desc="epoch 1", unit="batch", total=4, initial=1, every_s=0.0)
    bar._log = lambda: logged.append(bar.n)  # every update is "a minute later"
    bar.update()
    bar.update(2)
    bar.close()
    bar.close()  # closing twice logs once
    assert logged == [2, 4, 4]


def test_disabled_progress_is_silent(capsys, caplog):
    with caplog.at_level(logging.INFO):
        assert list(progress_bar(range(3), desc="x", disable=True)) == [0, 1, 2]
    assert not caplog.records and not capsys.readouterr().err

"""Work directories of the source service: made and removed off the event loop."""

from __future__ import annotations

from pathlib import Path

from fluxbus_common.workdir import WorkDirs


async def test_a_work_directory_is_made_empty_and_private_under_its_root(tmp_path: Path) -> None:
    made = await WorkDirs(tmp_path).make()
    assert made.parent == tmp_path and made.is_dir()
    assert list(made.iterdir()) == []
    assert made.stat().st_mode & 0o777 == 0o700


async def test_removing_a_work_directory_takes_everything_below_it(tmp_path: Path) -> None:
    dirs = WorkDirs(tmp_path)
    made = await dirs.make()
    (made / "tree/app").mkdir(parents=True)
    (made / "tree/app/deploy.yaml").write_text("kind: Deployment\n")
    await dirs.remove(made)
    assert not made.exists()


async def test_removing_a_directory_that_is_already_gone_is_fine(tmp_path: Path) -> None:
    await WorkDirs(tmp_path).remove(tmp_path / "never-made")

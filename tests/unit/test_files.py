"""The one atomic writer every lab writer uses (lab.core.files); its full-disk and read-only cases run
on real mounts in tests/integration/test_bad_inputs.py."""

import os

import pytest

from lab.core.errors import LabError
from lab.core.files import check_writable, write_atomic


def test_the_writer_never_leaves_a_temporary_file_beside_a_good_write(tmp_path):
    from lab.core.files import write_atomic

    target = tmp_path / "out" / "a.json"
    write_atomic(target, "{}\n")
    write_atomic(target, '{"a": 1}\n')
    assert target.read_text() == '{"a": 1}\n' and os.listdir(target.parent) == ["a.json"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_path_under_a_file_is_one_error_naming_it(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(
        LabError,
        match=r"cannot write .*afile/out.json \(File exists\): a file stands where a folder should be",
    ):
        write_atomic(tmp_path / "afile" / "out.json", "{}")
    with pytest.raises(
        LabError, match=r"cannot write into .*afile/sub \(Not a directory\): a file stands where"
    ):
        check_writable(tmp_path / "afile" / "sub")

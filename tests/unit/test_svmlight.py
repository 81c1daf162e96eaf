"""The SVMlight/LETOR parser on tiny inline files: values, sparsity, comments, and one error per malformed line
naming the file and the line number."""

from __future__ import annotations

import numpy as np
import pytest

from dualrerank.data.svmlight import SvmlightError, read_svmlight

GOOD = """\
# a comment line, then a blank line

2 qid:7 1:0.5 3:-1.25 # trailing comment
0 qid:7 2:4
1 qid:9 1:1e-3 2:0 3:7
"""


def write(tmp_path, text, name="f.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_labels_queries_and_dense_features(tmp_path):
    f = read_svmlight(write(tmp_path, GOOD))
    assert f.label.tolist() == [2, 0, 1]
    assert f.qid.tolist() == [7, 7, 9]
    assert f.line.tolist() == [3, 4, 5]  # 1-based line numbers, comments and blanks skipped
    np.testing.assert_array_equal(f.features, [[0.5, 0.0, -1.25], [0.0, 4.0, 0.0], [1e-3, 0.0, 7.0]])
    assert f.query_blocks() == [slice(0, 2), slice(2, 3)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x qid:1 1:0.5", "label is not a number: 'x'"),
        ("-1 qid:1 1:0.5", "non-negative integer grade"),
        ("1.5 qid:1 1:0.5", "non-negative integer grade"),
        ("1 1:0.5 2:3", "expected 'qid:N' after the label, got '1:0.5'"),
        ("1", "expected 'qid:N' after the label, got 'end of line'"),
        ("1 qid:a 1:0.5", "query id must be an integer"),
        ("1 qid:1 0.5", "expected 'id:value', got '0.5'"),
        ("1 qid:1 a:0.5", "feature id must be an integer"),
        ("1 qid:1 0:0.5", "feature ids are 1-based"),
        ("1 qid:1 3:1 2:1", r"feature ids must increase along a line \(2 after 3\)"),
        ("1 qid:1 2:1 2:1", r"feature ids must increase along a line \(2 after 2\)"),
        ("1 qid:1 1:abc", "feature 1 is not a number: 'abc'"),
        ("1 qid:1 1:nan", "feature 1 is not finite"),
        ("1 qid:1 1:inf", "feature 1 is not finite"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, line, message):
    path = write(tmp_path, "0 qid:1 1:0.1\n\n" + line + "\n")
    with pytest.raises(SvmlightError, match=message) as err:
        read_svmlight(path)
    assert str(err.value).startswith(f"{path}:3: ")


def test_a_query_split_over_two_blocks_is_rejected(tmp_path):
    path = write(tmp_path, "0 qid:1 1:1\n0 qid:2 1:1\n1 qid:1 1:1\n")
    with pytest.raises(SvmlightError, match=rf"{path}:3: qid 1 appears again"):
        read_svmlight(path)


def test_an_empty_file_is_rejected(tmp_path):
    with pytest.raises(SvmlightError, match="no documents"):
        read_svmlight(write(tmp_path, "# nothing here\n\n"))

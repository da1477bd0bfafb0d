"""Unified diffs of string values and applying them as patches (`genconf.domain.patch`).

The literal `diff -u` and `git diff` outputs below were printed by GNU diffutils and
git, so the tests need neither tool.
"""

from __future__ import annotations

import pytest
from domain_strategies import PROPERTY
from hypothesis import assume, given
from hypothesis import strategies as st

from genconf.domain.patch import apply_patch, split_lines, unified_diff
from genconf.errors import FailedPrecondition, InvalidArgument, PatchFailed

NGINX_OLD = (
    "listen 80;\nroot /srv;\nindex index.html;\ngzip on;\nerror_log warn;\n"
    "access_log off;\nsendfile on;\ntcp_nopush on;\nkeepalive 65;\nworkers 4;\n"
)
NGINX_NEW = (
    "listen 8080;\nroot /srv;\nindex index.html;\ngzip on;\nerror_log warn;\n"
    "access_log off;\nsendfile on;\ntcp_nopush on;\nkeepalive 30;\nworkers 4;\nretries 2;\n"
)
# `diff -u motd.old motd.new` (GNU diffutils), timestamps and all.
NGINX_GNU_BODY = """\
@@ -1,4 +1,4 @@
-listen 80;
+listen 8080;
 root /srv;
 index index.html;
 gzip on;
@@ -6,5 +6,6 @@
 access_log off;
 sendfile on;
 tcp_nopush on;
-keepalive 65;
+keepalive 30;
 workers 4;
+retries 2;
"""
NGINX_GNU = (
    "--- motd.old\t2024-05-01 12:00:00.000000000 +0000\n"
    "+++ motd.new\t2024-05-02 08:30:00.000000000 +0000\n" + NGINX_GNU_BODY
)
# `diff -u nl.old nl.new`: the old text has no newline at its end.
NO_NL_OLD, NO_NL_NEW = "one\ntwo\nthree", "one\n2\nthree\n"
NO_NL_GNU_BODY = """\
@@ -1,3 +1,3 @@
 one
-two
-three
\\ No newline at end of file
+2
+three
"""
NO_NL_GNU = (
    "--- nl.old\t2024-05-01 12:00:00.000000000 +0000\n"
    "+++ nl.new\t2024-05-01 12:00:00.000000000 +0000\n" + NO_NL_GNU_BODY
)
# `git diff` after changing b and appending e without a newline.
GIT_DIFF = """\
diff --git a/motd b/motd
index d68dd40..bd2b3e3 100644
--- a/motd
+++ b/motd
@@ -1,4 +1,5 @@
 a
-b
+B
 c
 d
+e
\\ No newline at end of file
"""

LINES_1_TO_15 = "".join(f"l{n}\n" for n in range(1, 16))


def lines(*items: str) -> str:
    """Newline-terminated lines, joined: the shape most values have."""
    return "".join(f"{item}\n" for item in items)


# -- unified_diff ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "gnu_body"),
    [(NGINX_OLD, NGINX_NEW, NGINX_GNU_BODY), (NO_NL_OLD, NO_NL_NEW, NO_NL_GNU_BODY)],
    ids=["two-hunks", "no-newline-marker"],
)
def test_unified_diff_prints_what_gnu_diff_prints(old: str, new: str, gnu_body: str) -> None:
    assert unified_diff(old, new, "motd") == "--- a/motd\n+++ b/motd\n" + gnu_body


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("", "a\nb\n", "@@ -0,0 +1,2 @@\n+a\n+b\n"),
        ("a\nb\n", "", "@@ -1,2 +0,0 @@\n-a\n-b\n"),
        ("a\n", "a", "@@ -1 +1 @@\n-a\n+a\n\\ No newline at end of file\n"),
        ("x\na", "x\nb", "@@ -1,2 +1,2 @@\n x\n-a\n\\ No newline at end of file\n+b\n"
         "\\ No newline at end of file\n"),
        ("a\nz", "b\nz", "@@ -1,2 +1,2 @@\n-a\n+b\n z\n\\ No newline at end of file\n"),
        ("a\r\nb\r\n", "a\r\nc\r\n", "@@ -1,2 +1,2 @@\n a\r\n-b\r\n+c\r\n"),
        ("a\rb\n", "a\rc\n", "@@ -1 +1 @@\n-a\rb\n+a\rc\n"),
    ],
    ids=["from-empty", "to-empty", "drop-newline", "both-unterminated", "shared-last-line",
         "crlf", "lone-cr-is-not-a-line-end"],
)  # fmt: skip
def test_unified_diff_exact_text(old: str, new: str, expected: str) -> None:
    assert unified_diff(old, new, "k") == "--- a/k\n+++ b/k\n" + expected


def test_unified_diff_of_equal_texts_is_empty_and_applying_it_is_refused() -> None:
    assert unified_diff("same\n", "same\n", "motd") == ""
    with pytest.raises(InvalidArgument) as caught:
        apply_patch("same\n", "", "motd")
    assert caught.value.message == (
        "cannot patch 'motd': the diff has no hunks (no '@@ -START,COUNT +START,COUNT @@' "
        "line); give a unified diff as `diff -u` or `genconf version diff --key` prints it"
    )


def test_split_lines_cuts_at_newline_only() -> None:
    assert split_lines("a\r\nb\rc\u2028d\x0ce\n\nf") == ["a\r\n", "b\rc\u2028d\x0ce\n", "\n", "f"]
    assert split_lines("") == []


# -- round trips -------------------------------------------------------------------

ROUND_TRIPS = {
    "one-line-changed": (lines("a", "b", "c"), lines("a", "B", "c")),
    "two-hunks": (NGINX_OLD, NGINX_NEW),
    "add-at-start": (lines("a", "b", "c", "d", "e"), lines("new", "a", "b", "c", "d", "e")),
    "add-at-end": (lines("a", "b", "c", "d", "e"), lines("a", "b", "c", "d", "e", "new")),
    "delete-everything": (lines("a", "b", "c"), ""),
    "from-empty": ("", lines("a", "b")),
    "old-without-final-newline": ("a\nb", "a\nb\n"),
    "new-without-final-newline": ("a\nb\n", "a\nb"),
    "both-without-final-newline": ("a\nb", "a\nc"),
    "unterminated-last-line-kept": ("a\nb\nc\nd\ne\nf", "A\nb\nc\nd\ne\nf"),
    "only-a-newline": ("\n", ""),
    "crlf": ("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\nd\r\n"),
    "crlf-unterminated": ("a\r\nb\r", "a\r\nb\r\n"),
    "diff-syntax-in-text": (
        lines("--- a/x", "+++ b/x", "@@ -1 +1 @@", "\\ No newline at end of file", " x"),
        lines("-- a/x", "+++ b/x", "@@ -2 +2 @@", "\\ no", "  x", "-"),
    ),
    "blank-lines": (lines("", "", "a", ""), lines("", "a", "", "")),
    "unicode-separators-inside-lines": ("a\u2028b\n\x0c\n", "a\u2029b\n\x0c\n"),
}


@pytest.mark.parametrize(("old", "new"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_apply_patch_of_unified_diff_gives_the_new_text(old: str, new: str) -> None:
    diff = unified_diff(old, new, "motd")
    assert diff.startswith("--- a/motd\n+++ b/motd\n@@ ")
    assert apply_patch(old, diff, "motd") == new


# -- diffs from other tools and hand-written ones ----------------------------------

APPLIES = {
    "gnu-diff-u": (NGINX_OLD, NGINX_GNU, NGINX_NEW),
    "gnu-diff-u-no-newline": (NO_NL_OLD, NO_NL_GNU, NO_NL_NEW),
    "git-diff": (lines("a", "b", "c", "d"), GIT_DIFF, "a\nB\nc\nd\ne"),
    "git-diff-mode-change": (
        lines("a"),
        "diff --git a/motd b/motd\nold mode 100644\nnew mode 100755\n"
        "index 7898192..6178079 100755\n--- a/motd\n+++ b/motd\n@@ -1 +1 @@\n-a\n+b\n",
        lines("b"),
    ),
    "no-headers": (lines("a", "b", "c"), "@@ -2 +2 @@\n-b\n+B\n", lines("a", "B", "c")),
    "section-heading": (
        lines("server {", "  port 1;", "}"),
        "@@ -1,3 +1,3 @@ server {\n server {\n-  port 1;\n+  port 2;\n }\n",
        lines("server {", "  port 2;", "}"),
    ),
    "editor-stripped-empty-context-line": (
        lines("a", "", "b"),
        "@@ -1,3 +1,3 @@\n a\n\n-b\n+B\n",
        lines("a", "", "B"),
    ),
    "patch-without-final-newline": (lines("a", "b"), "@@ -2 +2 @@\n-b\n+c", lines("a", "c")),
    "trailing-blank-lines": (lines("a"), "@@ -1 +1 @@\n-a\n+b\n\n  \n", lines("b")),
    "zero-context-insert-at-top": (
        lines("a", "b"),
        "@@ -0,0 +1 @@\n+top\n",
        lines("top", "a", "b"),
    ),
    "zero-context-insert-after-line": (
        lines("a", "b"),
        "@@ -1,0 +2 @@\n+mid\n",
        lines("a", "mid", "b"),
    ),
    "crlf-patch-on-crlf-text": ("a\r\nb\r\n", "@@ -1,2 +1,2 @@\n a\r\n-b\r\n+B\r\n", "a\r\nB\r\n"),
    "delete-everything": (lines("a", "b"), "--- a/k\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-a\n-b\n", ""),
}


@pytest.mark.parametrize(("text", "patch", "expected"), APPLIES.values(), ids=APPLIES.keys())
def test_apply_patch_accepts(text: str, patch: str, expected: str) -> None:
    assert apply_patch(text, patch, "motd") == expected


# -- offsets -----------------------------------------------------------------------


def test_hunks_apply_after_lines_were_inserted_above_them() -> None:
    """Both hunks move down by the four inserted lines; the second starts from the
    first one's offset."""
    old = "".join(f"l{n}\n" for n in range(1, 21))
    new = old.replace("l5\n", "five\n").replace("l13\n", "thirteen\n")
    patch = unified_diff(old, new, "k")
    assert [line for line in patch.splitlines() if line.startswith("@@")] == [
        "@@ -2,7 +2,7 @@",
        "@@ -10,7 +10,7 @@",
    ]
    above = lines("# one", "# two", "# three", "# four")
    assert apply_patch(above + old, patch, "k") == above + new


def test_later_hunk_starts_looking_where_the_earlier_hunks_offset_puts_it() -> None:
    """Three lines went in above: hunk 2 first tries line 8 + 3, not the stray match
    at line 8 itself."""
    patch = "@@ -1 +1 @@\n-A\n+A2\n@@ -8 +8 @@\n-x\n+X\n"
    text = lines("n", "n", "n", "A", "m", "m", "m", "x", "m", "m", "x", "m")
    assert apply_patch(text, patch, "k") == lines(
        "n", "n", "n", "A2", "m", "m", "m", "x", "m", "m", "X", "m"
    )


def test_hunk_applies_after_lines_were_removed_above_it() -> None:
    old = LINES_1_TO_15
    new = old.replace("l9\n", "nine\n")
    patch = unified_diff(old, new, "k")
    assert patch.splitlines()[2] == "@@ -6,7 +6,7 @@"
    shorter = old.replace("l2\nl3\n", "")
    assert apply_patch(shorter, patch, "k") == shorter.replace("l9\n", "nine\n")


def test_hunk_moves_to_the_nearest_fit_below_before_above() -> None:
    """Equally near fits above and below: GNU patch tries below first."""
    text = lines("x", "q", "x")
    assert apply_patch(text, "@@ -2 +2 @@\n-x\n+X\n", "k") == lines("x", "q", "X")


def test_hunk_never_moves_over_an_earlier_hunk() -> None:
    """Hunk 2's nearest fit (line 1) is what hunk 1 replaced: it goes to line 4."""
    text = lines("y", "q", "q", "y")
    patch = "@@ -1 +1 @@\n-y\n+Y\n@@ -2 +2 @@\n-y\n+Z\n"
    assert apply_patch(text, patch, "k") == lines("Y", "q", "q", "Z")


def test_hunk_with_short_leading_context_stays_at_the_top() -> None:
    """diff had nothing above line 1 to show: the hunk adds at the top or nowhere."""
    patch = unified_diff(lines("a", "b", "c", "d", "e"), lines("new", "a", "b", "c", "d", "e"), "k")
    assert patch.splitlines()[2] == "@@ -1,3 +1,4 @@"
    with pytest.raises(PatchFailed) as caught:
        apply_patch(lines("first", "a", "b", "c", "d", "e"), patch, "k")
    assert "hunk 1 (@@ -1,3 +1,4 @@) expects line 1 to be 'a', it is 'first'" in str(caught.value)


def test_hunk_with_short_trailing_context_stays_at_the_end() -> None:
    patch = unified_diff(lines("a", "b", "c", "d", "e"), lines("a", "b", "c", "d", "e", "new"), "k")
    assert patch.splitlines()[2] == "@@ -3,3 +3,4 @@"
    with pytest.raises(PatchFailed) as caught:
        apply_patch(lines("a", "b", "c", "d", "e", "last"), patch, "k")
    assert "hunk 1 (@@ -3,3 +3,4 @@) expects line 4 to be 'c', it is 'd'" in str(caught.value)


# -- refusals: the diff does not fit -----------------------------------------------


def test_stale_context_names_the_hunk_the_line_and_both_texts() -> None:
    patch = (
        "--- a/motd\n+++ b/motd\n"
        "@@ -1,3 +1,3 @@\n-l1\n+L1\n l2\n l3\n"
        "@@ -10,4 +10,5 @@\n l10\n foo\n+new\n l12\n l13\n"
    )
    text = LINES_1_TO_15.replace("l11\n", "bar\n")
    with pytest.raises(PatchFailed) as caught:
        apply_patch(text, patch, "motd")
    assert isinstance(caught.value, FailedPrecondition)
    assert caught.value.message == (
        "patch for 'motd' does not apply: hunk 2 (@@ -10,4 +10,5 @@) expects line 11 to be "
        "'foo', it is 'bar'; nothing was written. Diff against the current value "
        "(genconf config get) and retry"
    )
    # the same patch applies where the value still says foo
    assert apply_patch(LINES_1_TO_15.replace("l11\n", "foo\n"), patch, "motd").startswith("L1\n")


@pytest.mark.parametrize(
    ("text", "patch", "fragment"),
    [
        (
            lines("a"),
            "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n",
            "hunk 1 (@@ -1,3 +1,3 @@) expects line 2 to be 'b', but the value has only 1 line(s)",
        ),
        (
            "a\nb",
            "@@ -1,2 +1,2 @@\n a\n-b\n+B\n",
            "expects line 2 to be 'b', but it is the last line and has no newline at end",
        ),
        (
            lines("a", "b"),
            "@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+B\n",
            "expects line 2 to be 'b' with no newline at end, but it has one",
        ),
        (
            lines("a", "b", "c"),
            "@@ -2 +2 @@\n-b\n+B\n\\ No newline at end of file\n",
            "hunk 1 (@@ -2 +2 @@) must end the value (its last line has no newline at end), "
            "but the value goes on after line 2",
        ),
        ("a", "@@ -1,0 +2 @@\n+b\n", "adds lines after line 1, which has no newline at end"),
        (
            lines("a", "x", "b"),
            "@@ -1 +1 @@\n-a\n+A\n@@ -3 +3 @@\n-a\n+Z\n",
            "hunk 2 (@@ -3 +3 @@) expects line 3 to be 'a', it is 'b'",
        ),
        (
            "x" * 100 + "\n",
            f"@@ -1 +1 @@\n-{'y' * 100}\n+z\n",
            f"expects line 1 to be '{'y' * 57}'..., it is '{'x' * 57}'...",
        ),
    ],
    ids=["text-too-short", "newline-missing", "newline-extra", "must-end-the-value",
         "insert-after-unterminated-line", "only-the-earlier-hunk-fits", "long-lines-shortened"],
)  # fmt: skip
def test_patch_that_does_not_fit_is_refused(text: str, patch: str, fragment: str) -> None:
    with pytest.raises(PatchFailed) as caught:
        apply_patch(text, patch, "motd")
    assert fragment in caught.value.message
    assert caught.value.message.startswith("patch for 'motd' does not apply: hunk ")
    assert caught.value.message.endswith("; nothing was written. Diff against the current value "
                                         "(genconf config get) and retry")  # fmt: skip


# -- refusals: malformed diffs -----------------------------------------------------

NO_NEWLINE = "\\ No newline at end of file"


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ("hello\n", "at line 1: expected a '--- a/motd' header or a hunk header "
         "'@@ -START,COUNT +START,COUNT @@', got 'hello'"),
        ("diff --git a/m b/m\n--- a/m\nhello\n@@ -1 +1 @@\n-a\n+b\n",
         "at line 2: the '---' header is not followed by a '+++' header"),
        ("@@ -1,2 +1,2\n a\n", "at line 1: bad hunk header '@@ -1,2 +1,2'; expected '@@ -START"),
        ("@@ -a +1 @@\n a\n", "at line 1: bad hunk header '@@ -a +1 @@'"),
        ("@@ -0,0 +0,0 @@\n", "at line 1: hunk 1 (@@ -0,0 +0,0 @@) has no lines"),
        ("@@ -0,2 +1,2 @@\n a\n b\n", "at line 1: hunk 1 (@@ -0,2 +1,2 @@): only an empty range "
         "starts at 0"),
        ("--- a/m\n+++ b/m\n@@ -1,2 +1,2 @@\n a\n",
         "at line 4: the diff ends inside hunk 1 (@@ -1,2 +1,2 @@), 1 old and 1 new line(s) "
         "short of its header's counts"),
        ("@@ -1 +1 @@\n-a\n+b\n+c\n", "at line 4: '+c' follows hunk 1 (@@ -1 +1 @@), which its "
         "header says is complete: the header's line counts do not match its body"),
        ("@@ -1,2 +1 @@\n-a\n+b\n+c\n", "at line 4: hunk 1 (@@ -1,2 +1 @@) has more new lines "
         "than its header says"),
        ("@@ -1,2 +1,2 @@\n-a\n*b\n", "at line 3: '*b' is not a hunk line (' ', '-', '+' or "
         "'\\'); hunk 1 (@@ -1,2 +1,2 @@) still needs 1 old and 2 new line(s)"),
        ("@@ -1 +1 @@\n-a\n+b\ngarbage\n", "at line 4: expected a hunk header "
         "'@@ -START,COUNT +START,COUNT @@' or the end, got 'garbage'"),
        (f"@@ -1 +1 @@\n{NO_NEWLINE}\n-a\n+b\n", "at line 2: '\\ No newline at end of file' "
         "does not follow a line of hunk 1 (@@ -1 +1 @@)"),
        (f"@@ -1 +1 @@\n-a\n{NO_NEWLINE}\n{NO_NEWLINE}\n+b\n", "at line 4: '\\ No newline at "
         "end of file' does not follow a line of hunk 1"),
        (f"@@ -1,2 +1,2 @@\n-a\n{NO_NEWLINE}\n-b\n+c\n+d\n", "at line 4: hunk 1 "
         "(@@ -1,2 +1,2 @@) goes on after a line marked '\\ No newline at end of file'"),
        ("@@ -5 +5 @@\n-a\n+b\n@@ -2 +2 @@\n-c\n+d\n", "at line 4: hunk 2 (@@ -2 +2 @@) starts "
         "before hunk 1 (@@ -5 +5 @@) ends; hunks must come in file order"),
        (f"@@ -1 +1 @@\n-a\n{NO_NEWLINE}\n+b\n@@ -3 +3 @@\n-c\n+d\n", "at line 5: hunk 2 "
         "(@@ -3 +3 @@) follows hunk 1, which reaches the end of the file"),
        (GIT_DIFF.replace(NO_NEWLINE + "\n", "") + GIT_DIFF.replace("motd", "other"),
         "at line 12: a second file's header; the diff must change 'motd' only"),
        ("--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n",
         "at line 6: a second file's header"),
    ],
    ids=["garbage", "minus-without-plus", "unclosed-header", "non-numeric-header", "empty-hunk",
         "range-at-zero", "body-cut-short", "body-too-long", "new-count-exceeded",
         "not-a-hunk-line", "garbage-after-hunk", "marker-first", "marker-twice",
         "line-after-marker", "hunks-out-of-order", "hunk-after-end-of-file",
         "second-git-file", "second-file"],
)  # fmt: skip
def test_malformed_diff_is_invalid_argument(patch: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        apply_patch("a\nb\nc\n", patch, "motd")
    assert caught.value.message.startswith("cannot patch 'motd': the diff is malformed at line ")
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    "patch",
    ["", "\n", "--- a/motd\n+++ b/motd\n", "diff --git a/motd b/motd\nindex 1..2 100644\n"],
    ids=["empty", "blank", "headers-only", "git-preamble-only"],
)
def test_diff_without_hunks_is_invalid_argument(patch: str) -> None:
    with pytest.raises(InvalidArgument, match="the diff has no hunks"):
        apply_patch("a\n", patch, "motd")


# -- properties --------------------------------------------------------------------


@st.composite
def texts(draw: st.DrawFn) -> str:
    """Lines from a small alphabet (so diffs find common lines), with or without a
    final newline, the empty text included."""
    items = draw(st.lists(st.sampled_from(["a", "b", "c", "", "a\r", "b b"]), max_size=12))
    if not items:
        return ""
    return "\n".join(items) + ("\n" if draw(st.booleans()) else "")


@st.composite
def edited(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few whole lines inserted or deleted: a value edited since."""
    result = split_lines(text)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(result)))
        if result and at < len(result) and draw(st.booleans()):
            del result[at]
        else:
            result.insert(at, draw(st.sampled_from(["a\n", "x\n", "b b\n"])))
    return "".join(result)


@PROPERTY
@given(texts(), texts())
def test_property_a_diff_turns_its_old_text_into_its_new_text(a: str, b: str) -> None:
    assume(a != b)
    assert apply_patch(a, unified_diff(a, b, "k"), "k") == b


@PROPERTY
@given(texts(), texts(), st.data())
def test_property_a_diff_on_another_text_applies_or_is_refused(
    a: str, b: str, data: st.DataObject
) -> None:
    """Never a crash nor InvalidArgument: the diff is well-formed, only the text differs."""
    assume(a != b)
    c = data.draw(st.one_of(texts(), edited(a), st.just(a)))
    try:
        result = apply_patch(c, unified_diff(a, b, "k"), "k")
    except PatchFailed as refused:
        assert c != a
        assert refused.message.startswith("patch for 'k' does not apply: hunk ")
    else:
        assert isinstance(result, str)
        if c == a:
            assert result == b

"""The live loop: served traffic logged and learned from, round by round (work in progress: the log store)."""

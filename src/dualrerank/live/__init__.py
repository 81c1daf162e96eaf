"""The live loop: served traffic logged and learned from, round by round (being built: the impression log store
and the split of users between arms)."""

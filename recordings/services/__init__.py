"""Services: every write users see goes through a verb_noun function that also writes the audit row."""

"""plate_detect's clients unchanged: keyless requests and its result paths.

The task routes themselves are Imago's (images/plates/api.py), and so is the delivery to the
operator's webhook targets (images/plates/targets.py): this package adds only what plate_detect had
and Imago had not.
"""

"""plate_detect's clients unchanged: keyless requests, its result paths, its operator webhooks.

The task routes themselves are Imago's (images/anonymize_api.py): this package adds only what
plate_detect had and Imago had not.
"""

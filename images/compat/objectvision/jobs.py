from django.core.management import call_command


def flush_expired_tokens() -> None:
    """simplejwt keeps a row per refresh token issued (and per one logged out): past their
    expiry they refuse nothing, so they go."""
    call_command("flushexpiredtokens")

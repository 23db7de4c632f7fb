from asyncguard.lint.rule import Rule


class InternalError(Rule):
    """Reports a file on which the checker itself failed. This is a bug in asyncguard; please report it with the
    file (or a reduced copy). The run goes on with the other files and exits with status 2.
    """

    code = "AG002"
    name = "internal-error"
    message = "internal error while checking this file: {call}"
    why = "A crash must never hide the findings of the other files, nor pass a CI gate silently."

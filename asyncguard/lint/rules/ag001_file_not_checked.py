from asyncguard.lint.rule import Rule


class FileNotChecked(Rule):
    """Reports a file that could not be checked: a syntax error, bytes that are not UTF-8, or a file that could
    not be read. The run goes on with the other files.
    """

    code = "AG001"
    name = "file-not-checked"
    message = "file not checked: {call}"
    why = (
        "A file the checker cannot read is a file whose blocking calls nobody sees. Reporting it keeps the gate "
        "honest instead of passing silently."
    )
    flagged = [
        "async def handler(:  # AG001\n    pass\n",
    ]
    accepted = [
        "async def handler():\n    pass\n",
        "match command:\n    case [x, y]:\n        pass\n",
        "type Pair[T] = tuple[T, T]\n",
    ]

"""`asyncguard server`: the checker as a language server, over stdio (pygls).

On start-up, on opening and on saving a file, the whole-program pass runs over the workspace (in a thread, with the
findings cache, so a warm run is quick and the server keeps answering meanwhile), and every file's diagnostics are
published: each with its rule's link and, for a finding reached through helpers, the chain's steps as related
information. The safe fixes (`time.sleep` → `await asyncio.sleep`) are offered as code actions, computed on the text
in the editor.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from asyncguard import __version__
from asyncguard.cli import UsageError, learn_from_environment
from asyncguard.lint.findings import Finding
from asyncguard.lint.interface.config import ConfigError, Settings, load_settings
from asyncguard.lint.interface.files import SourceFile, discover
from asyncguard.lint.interface.fixes import fixable, fix_source, fixing_context
from asyncguard.lint.interface.output import rule_url, text_message
from asyncguard.lint.interface.runner import run


class CheckServer(LanguageServer):
    """The workspace's last findings, by file, and the files that have diagnostics published."""

    def __init__(self):
        super().__init__("asyncguard", __version__)
        self.findings: dict[str, list[Finding]] = {}
        """By the file's URI."""
        self.checked: tuple[list[SourceFile], Settings] | None = None
        self.checking = asyncio.Lock()
        self.queued = False
        """A run waits for the one in progress: more saves meanwhile need no run of their own."""


server = CheckServer()


def check_workspace(root: Path) -> tuple[dict[str, list[Finding]], list[SourceFile], Settings]:
    """Every finding of the project at `root`, by file URI, as `asyncguard check ROOT` finds them (learning from the
    project's environment as it does)."""
    settings = load_settings([str(root)])
    files = list(discover([str(root)], settings.project_root, settings.walk_excludes()))
    learn_from_environment(settings, files, None, quiet=True)  # the same knowledge, and cache, as `check`
    result = run(files, settings)
    by_uri: dict[str, list[Finding]] = {}
    for finding in result.findings:
        if not settings.ignored_in_file(Path(finding.path), finding.code):
            by_uri.setdefault(uri_of(finding.path), []).append(finding)
    return by_uri, files, settings


def uri_of(path: str) -> str:
    """As the editor names the file: absolute, symbolic links kept (a workspace opened through one stays so)."""
    return Path(os.path.abspath(path)).as_uri()


def diagnostic(finding: Finding) -> lsp.Diagnostic:
    start = lsp.Position(line=finding.line - 1, character=max(finding.column - 1, 0))
    end = lsp.Position(line=finding.end_line - 1, character=max(finding.end_column - 1, 0))
    related = [lsp.DiagnosticRelatedInformation(
        location=lsp.Location(uri=uri_of(step["path"]),
                              range=lsp.Range(start=lsp.Position(line=max(step["line"], 1) - 1, character=0),
                                              end=lsp.Position(line=max(step["line"], 1) - 1, character=0))),
        message=f"→ {step['name']}") for step in finding.chain]
    return lsp.Diagnostic(range=lsp.Range(start=start, end=end), message=text_message(finding),
                          severity=lsp.DiagnosticSeverity.Warning, code=finding.code, source="asyncguard",
                          code_description=lsp.CodeDescription(href=rule_url(finding.code)),
                          related_information=related or None)


async def refresh(ls: CheckServer) -> None:
    """Check the workspace again and publish what changed (a file whose findings are gone gets an empty list)."""
    root = ls.workspace.root_path
    if root is None or ls.queued:  # a run is already waiting to start: it will see this change too
        return
    ls.queued = True
    async with ls.checking:
        ls.queued = False
        try:
            found, files, settings = await asyncio.to_thread(check_workspace, Path(root))
        except (ConfigError, UsageError) as error:
            ls.window_show_message(lsp.ShowMessageParams(type=lsp.MessageType.Error, message=f"asyncguard: {error}"))
            return
        for uri in set(ls.findings) | set(found):
            ls.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=uri, diagnostics=[diagnostic(finding) for finding in found.get(uri, [])]))
        ls.findings, ls.checked = found, (files, settings)


@server.feature(lsp.INITIALIZED)
async def initialized(ls: CheckServer, params: lsp.InitializedParams) -> None:
    await refresh(ls)


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
async def opened(ls: CheckServer, params: lsp.DidOpenTextDocumentParams) -> None:
    await refresh(ls)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
async def saved(ls: CheckServer, params: lsp.DidSaveTextDocumentParams) -> None:
    await refresh(ls)


@server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
def code_actions(ls: CheckServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    """The file's safe fixes, on the text in the editor: one action for those in the range, one for the file."""
    uri, chosen = params.text_document.uri, params.range
    findings = [f for f in ls.findings.get(uri, []) if fixable(f, unsafe=False)]
    if not findings or ls.checked is None:
        return []
    files, settings = ls.checked
    source = next((s for s in files if uri_of(str(s.path)) == uri), None)
    if source is None:
        return []
    document = ls.workspace.get_text_document(uri)
    knowledge, project = fixing_context(files, settings)
    in_range = [f for f in findings if chosen.start.line <= f.line - 1 <= chosen.end.line]
    codes = ", ".join(sorted({f.code for f in in_range}))
    choices = ([(f"asyncguard: fix {codes} here", in_range)] if in_range else []) + \
        ([("asyncguard: fix every safe finding in this file", findings)] if len(findings) > len(in_range) else [])
    actions = []
    for title, wanted in choices:
        try:
            after, count = fix_source(document.source, source.module, wanted, knowledge, project, unsafe=False)
        except Exception:  # a buffer mid-edit that does not parse: no action, and the server goes on
            continue
        if count:
            lines = document.source.splitlines(keepends=True)
            whole = lsp.Range(start=lsp.Position(line=0, character=0), end=lsp.Position(line=len(lines), character=0))
            actions.append(lsp.CodeAction(
                title=title, kind=lsp.CodeActionKind.QuickFix,
                diagnostics=[diagnostic(f) for f in wanted],
                edit=lsp.WorkspaceEdit(changes={uri: [lsp.TextEdit(range=whole, new_text=after)]})))
    return actions


def serve() -> int:
    server.start_io()
    return 0

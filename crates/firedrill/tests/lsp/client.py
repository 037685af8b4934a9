"""`firedrill lsp` driven by a real LSP client: pygls's LanguageClient (lsprotocol types).

Started by crates/firedrill/tests/lsp.rs with FIREDRILL_BIN (the built binary). It writes a
platform file unlike the embedded one into a workspace folder, names it by
initializationOptions.platform (relative to the workspace root), and checks diagnostics as the
buffer changes, completion at argument positions and of steps, hover, and a clean shutdown.
Prints `N passed, 0 failed` and exits 0 when every case passes.
"""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

BIN = os.environ["FIREDRILL_BIN"]
DEADLINE = 30.0

PLATFORM = """\
name: workspace
regions:
  eu-north1:
    role: primary
    kube-context: north1
    zones: [eu-north1-a, eu-north1-b]
  eu-north2:
    role: failover
    kube-context: north2
    zones: [eu-north2-a]
namespaces:
  shop-a:
    services:
      cart: { failover-replicas: 2 }
toxiproxy:
  url: http://127.0.0.1:8474
  links:
    orders-db: { proxy: orders-db }
faults:
  lb-drained:
    description: the load balancer's north1 backend is drained
    inject: { run: ["true"] }
    undo: { run: ["true"] }
probes:
  checkout:
    url: http://127.0.0.1:9/healthz
safety:
  allow:
    kube-contexts: [north1, north2]
    namespaces: [shop-a]
"""


class Client:
    def __init__(self):
        self.lsp = LanguageClient("firedrill-lsp-test", "1")
        self.published = {}
        self.changed = asyncio.Condition()

        @self.lsp.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        async def on_diagnostics(params):
            async with self.changed:
                self.published[params.uri] = params.diagnostics
                self.changed.notify_all()

    async def diagnostics(self, uri, predicate, what):
        """The latest diagnostics of `uri` once `predicate` holds, within the deadline."""

        async def until():
            async with self.changed:
                await self.changed.wait_for(
                    lambda: uri in self.published and predicate(self.published[uri])
                )
                return self.published[uri]

        try:
            return await asyncio.wait_for(until(), DEADLINE)
        except asyncio.TimeoutError:
            raise AssertionError(f"{what}: last published {self.published.get(uri)!r}")


def position(text, line, after):
    """The position just after the first `after` on line `line` of `text`."""
    row = text.splitlines()[line]
    at = row.index(after) + len(after)
    return types.Position(line=line, character=len(row[:at].encode("utf-16-le")) // 2)


async def main():
    workspace = Path(tempfile.mkdtemp(prefix="firedrill-lsp-"))
    (workspace / "platform.yaml").write_text(PLATFORM)
    drill = workspace / "drills" / "north.feature"
    drill.parent.mkdir()
    uri = drill.as_uri()
    catalog = json.loads(
        subprocess.run([BIN, "steps", "--format", "json"], check=True, capture_output=True).stdout
    )

    client = Client()
    env = {k: v for k, v in os.environ.items() if k != "FIREDRILL_PLATFORM"}
    await client.lsp.start_io(BIN, "lsp", env=env)
    init = await client.lsp.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(),
            root_uri=workspace.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name="ws")],
            initialization_options={"platform": "platform.yaml"},
        )
    )
    client.lsp.initialized(types.InitializedParams())

    passed = 0
    failed = 0

    async def case(name, body):
        nonlocal passed, failed
        try:
            await body()
            passed += 1
            print(f"ok   {name}")
        except Exception:  # noqa: BLE001 - every failure is reported with its trace
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc(file=sys.stdout)

    async def capabilities():
        caps = init.capabilities
        assert caps.hover_provider, caps
        assert caps.completion_provider is not None, caps
        assert caps.text_document_sync == types.TextDocumentSyncKind.Full, caps

    version = 1
    bad = (
        "Feature: north\n"
        "  Scenario: the primary goes dark\n"
        '    When region "us-west1" goes dark\n'
    )

    async def diagnostics_name_the_argument_against_the_workspace_platform():
        client.lsp.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="gherkin", version=version, text=bad
                )
            )
        )
        found = await client.diagnostics(uri, lambda d: len(d) > 0, "a bad region is flagged")
        assert len(found) == 1, found
        d = found[0]
        assert 'region "us-west1" is not in the platform' in d.message, d.message
        assert "eu-north1" in d.message and "eu-north2" in d.message, d.message
        assert d.range.start == position(bad, 2, 'region "'), d.range
        assert d.severity == types.DiagnosticSeverity.Error, d

    async def diagnostics_clear_as_the_author_fixes_the_step():
        change(bad.replace("us-west1", "eu-north1"))
        await client.diagnostics(uri, lambda d: len(d) == 0, "fixed step has no problem")

    async def an_undefined_step_is_flagged_with_suggestions():
        change(bad.replace('region "us-west1" goes dark', 'region "eu-north1" goes drak'))
        found = await client.diagnostics(
            uri, lambda d: any("undefined step" in x.message for x in d), "undefined step"
        )
        assert 'region "{region}" goes dark' in found[0].message, found[0].message
        assert found[0].range.start.line == 2, found[0].range

    def change(text):
        """Sends the whole new text of the buffer (the server syncs in full)."""
        nonlocal version
        version += 1
        client.lsp.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    async def complete(text, line, after):
        change(text)
        result = await asyncio.wait_for(
            client.lsp.text_document_completion_async(
                types.CompletionParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=position(text, line, after),
                )
            ),
            DEADLINE,
        )
        items = result if isinstance(result, list) else result.items
        return [i.label for i in items], items

    scenario = "Feature: north\n  Scenario: s\n"

    async def arguments_complete_with_the_platforms_names():
        cases = [
            ('    When region "', ["eu-north1", "eu-north2"]),
            ('    When zone "', ["eu-north1-a", "eu-north1-b", "eu-north2-a"]),
            ('    When the link "', ["orders-db"]),
            ('    Then the "', ["checkout"]),
            ('    When the fault "', ["lb-drained"]),
            ('    Given a write checker runs against the "', ["shop-a"]),
            ('    When 2 pods of "app=cart" in "', ["shop-a"]),
        ]
        for line, expected in cases:
            text = scenario + line + "\n"
            labels, items = await complete(text, 2, line.strip())
            assert labels == expected, (line, labels)
        text = scenario + '    When region "eu-n\n'
        labels, items = await complete(text, 2, '"eu-n')
        edit = items[0].text_edit
        assert edit.new_text == "eu-north1", edit
        assert edit.range.start == position(text, 2, 'region "'), edit.range

    async def steps_complete_by_keyword_and_and_continues_the_one_before():
        text = scenario + '    When region "eu-north1" goes dark\n    And \n'
        labels, items = await complete(text, 3, "And ")
        whens = [s["pattern"] for s in catalog if s["example"].startswith("When ")]
        assert labels == whens, labels
        dark = next(i for i in items if i.label == 'region "{region}" goes dark')
        assert dark.insert_text_format == types.InsertTextFormat.Snippet, dark
        assert dark.text_edit.new_text == 'region "${1:us-west1}" goes dark', dark.text_edit

    async def hover_shows_the_steps_doc_and_example():
        text = scenario + '    When region "eu-north1" goes dark\n'
        await complete(text, 2, "When ")
        hover = await asyncio.wait_for(
            client.lsp.text_document_hover_async(
                types.HoverParams(
                    text_document=types.TextDocumentIdentifier(uri=uri),
                    position=position(text, 2, "region"),
                )
            ),
            DEADLINE,
        )
        assert hover is not None, "no hover on a known step"
        step = next(s for s in catalog if s["pattern"] == 'region "{region}" goes dark')
        assert step["doc"] in hover.contents.value, hover.contents.value
        assert step["example"] in hover.contents.value, hover.contents.value

    async def a_new_platform_setting_rechecks_open_buffers():
        (workspace / "other.yaml").write_text(PLATFORM.replace("eu-north1", "ap-east1"))
        text = scenario + '    When region "eu-north1" goes dark\n'
        await complete(text, 2, "When ")
        await client.diagnostics(uri, lambda d: len(d) == 0, "valid against platform.yaml")
        client.lsp.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(settings={"firedrill": {"platform": "other.yaml"}})
        )
        found = await client.diagnostics(
            uri, lambda d: len(d) == 1, "rechecked against other.yaml"
        )
        assert "ap-east1" in found[0].message, found[0].message

    for body in [
        capabilities,
        diagnostics_name_the_argument_against_the_workspace_platform,
        diagnostics_clear_as_the_author_fixes_the_step,
        an_undefined_step_is_flagged_with_suggestions,
        arguments_complete_with_the_platforms_names,
        steps_complete_by_keyword_and_and_continues_the_one_before,
        hover_shows_the_steps_doc_and_example,
        a_new_platform_setting_rechecks_open_buffers,
    ]:
        await case(body.__name__, body)

    await asyncio.wait_for(client.lsp.shutdown_async(None), DEADLINE)
    client.lsp.exit(None)
    server = client.lsp._server
    code = await asyncio.wait_for(server.wait(), DEADLINE)
    if code == 0:
        passed += 1
        print("ok   shutdown_then_exit_ends_the_server_with_0")
    else:
        failed += 1
        print(f"FAIL shutdown_then_exit_ends_the_server_with_0: exit code {code}")
    await client.lsp.stop()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

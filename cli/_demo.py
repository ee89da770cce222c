from __future__ import annotations

import argparse
from pathlib import Path

from ._ui import bold, say


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="the bundle's model predicting in a browser, offline (onnxruntime-web)",
        description="Serve the demo page for a bundle on 127.0.0.1 (until Ctrl-C), or write it as a static site "
                    "with --out. The page runs model.onnx on the device with onnxruntime-web; see docs/mobile.md.",
        epilog="example: skedge demo models/penguins/1.0.0 --port 8765\n"
               "         skedge demo models/penguins/1.0.0 --out site/",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="bundle directory")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", metavar="NAME",
                   help="address to listen on (default 127.0.0.1). The server answers only to a Host header naming "
                        "this, 127.0.0.1 or localhost (DNS rebinding); anything but loopback shares the model on "
                        "your network")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="write a self-contained static site (page, onnxruntime-web, model, schema) instead of serving")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from skedge.mobile_demo import serve, write_site

    if args.out is not None:
        out = write_site(args.bundle, args.out)
        say(f"static site: {out}  (index.html, ort/, model/, sw.js, site.json)")
        say("serve it over https (or localhost) with .wasm as application/wasm and .mjs as text/javascript")
        return 0

    def ready(url: str) -> None:
        say(f"serving {bold(str(args.bundle))} at {url}  (Ctrl-C to stop)")
        print(end="", flush=True)

    serve(args.bundle, port=args.port, host=args.host, on_ready=ready)
    say("stopped")
    return 0

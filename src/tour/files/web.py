"""The tour's service: answers every request with a greeting.

kubesh gives it the port to listen on in $PORT, and makes a Service named
after this file (web) in front of it.
"""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer

# Change this line and save the file while `watch web` is on.
GREETING = "Hello from web!"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = (GREETING + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        # One line per request: what `logs web` shows.
        print(f"web: {self.command} {self.path} from {self.client_address[0]}", flush=True)


port = int(os.environ.get("PORT", "8080"))
print(f"web listens on port {port}", flush=True)
HTTPServer(("0.0.0.0", port), Handler).serve_forever()

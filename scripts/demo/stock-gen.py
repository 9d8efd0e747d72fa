"""Stock price generator: GET /stockdata answers the latest prices as JSON.

Runs in the background (`python stock-gen.py &`) as a Deployment behind a
Service named `stock-gen`; it listens on $PORT.
"""

import http.server
import json
import os
import random
import threading
import time

PRICES = {"NITE": 100.0, "DAWN": 50.0}
LOCK = threading.Lock()


def walk():
    while True:
        with LOCK:
            for symbol in PRICES:
                PRICES[symbol] = round(max(1.0, PRICES[symbol] * random.uniform(0.98, 1.02)), 2)
        time.sleep(0.1)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/stockdata":
            self.send_error(404, "try /stockdata")
            return
        with LOCK:
            body = json.dumps([{"symbol": s, "price": p} for s, p in PRICES.items()]).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


threading.Thread(target=walk, daemon=True).start()
http.server.ThreadingHTTPServer(("", int(os.environ["PORT"])), Handler).serve_forever()

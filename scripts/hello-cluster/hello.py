"""A small web service: runs as a Deployment behind a Service named `hello`."""
import http.server
import os


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"hello from {os.environ.get('HOSTNAME', 'a pod')}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        print("served", self.path, flush=True)


http.server.HTTPServer(("", int(os.environ["PORT"])), Hello).serve_forever()

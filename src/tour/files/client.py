"""The tour's client: finds web by the cluster env (WEB_URL) and calls it.

kubesh hands every program it launches the address of each service it
started before, as NAME_URL, NAME_SERVICE_HOST and NAME_SERVICE_PORT.
"""

import os
import sys
import urllib.request

url = os.environ.get("WEB_URL")
if not url:
    sys.exit("client: WEB_URL is not set; start web first: python web.py &")
try:
    with urllib.request.urlopen(url, timeout=10) as answer:
        greeting = answer.read().decode().strip()
except OSError as error:
    sys.exit(f"client: cannot call web at {url}: {error}")
print(f"client called {url}; web answered: {greeting}")

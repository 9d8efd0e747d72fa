"""A one-shot job: runs as a Pod, its output streams back, its exit status is $?."""
import os
import sys

print(f"job running in {os.getcwd()} with arguments {sys.argv[1:]}")
print(f"GREETING is {os.environ.get('GREETING')!r}")
sys.exit(len(sys.argv) - 1)

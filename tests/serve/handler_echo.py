"""A custom handler with TorchServe's shape, told by each request what to do: echo, sleep, fail, crash."""
import json
import os
import time


class EchoHandler:
    def initialize(self, context):
        self.context = context

    def handle(self, data, context):
        out = []
        for row in data:
            cmd = row.get("body")
            cmd = json.loads(cmd) if isinstance(cmd, (bytes, bytearray)) else cmd
            time.sleep(cmd.get("sleep", 0))
            if "bad" in cmd:
                raise ValueError(f"bad input: {cmd['bad']}")
            if cmd.get("crash"):
                raise RuntimeError("the handler was asked to crash")
            if cmd.get("exit"):
                os._exit(3)
            out.append({"echo": cmd, "pid": os.getpid()})
        return out

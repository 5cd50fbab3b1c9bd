"""TensorFlow's C++ start-up lines stay off the terminal: file descriptor 2 silenced."""

from __future__ import annotations

import os
import subprocess
import sys

from comp.native_log import VERBOSE_ENV


def test_writes_to_fd_2_inside_the_block_go_nowhere() -> None:
    code = ("import os, sys\n"
            "from comp.native_log import native_stderr_silenced\n"
            "with native_stderr_silenced():\n"
            "    os.write(2, b'inside\\n'); print('py inside', file=sys.stderr)\n"
            "os.write(2, b'after\\n')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={k: v for k, v in os.environ.items() if k != VERBOSE_ENV},
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "after\n"

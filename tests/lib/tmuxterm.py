"""A real terminal for the interactive screen's tests: a private tmux
server (its own socket) running one command in a window of a fixed size;
capture() reads the screen as text, keys() types."""
import os
import shutil
import subprocess
import time
import uuid


class Tmux:
    def __init__(self, width=160, height=40):
        self.sock = "kwtest-%s" % uuid.uuid4().hex[:8]
        self.width, self.height = width, height

    def _tmux(self, *args, check=True):
        return subprocess.run(["tmux", "-L", self.sock] + list(args), capture_output=True, text=True,
                              check=check, timeout=10)

    def start(self, argv, env=None):
        """Run argv in the window; the pane stays after it exits so its
        exit status can be read (status())."""
        cmd = " ".join("'%s'" % a.replace("'", "'\\''") for a in argv)
        envs = " ".join("%s='%s'" % kv for kv in (env or {}).items())
        self._tmux("-f", "/dev/null", "new-session", "-d", "-x", str(self.width), "-y", str(self.height),
                   "-s", "kw", "env LANG=C.UTF-8 %s %s; echo \"[exited $?]\"; sleep 60" % (envs, cmd))
        return self

    def resize(self, width, height):
        self._tmux("resize-window", "-t", "kw", "-x", str(width), "-y", str(height))
        self.width, self.height = width, height

    def capture(self):
        return self._tmux("capture-pane", "-p", "-t", "kw").stdout

    def keys(self, *keys):
        for k in keys:
            self._tmux("send-keys", "-t", "kw", k)
            time.sleep(0.05)

    def wait(self, cond, timeout=15.0, what="the screen"):
        end = time.monotonic() + timeout
        while True:
            screen = self.capture()
            if cond(screen):
                return screen
            if time.monotonic() > end:
                raise AssertionError("timed out waiting for %s; the screen:\n%s" % (what, screen))
            time.sleep(0.1)

    def wait_text(self, text, timeout=15.0):
        return self.wait(lambda s: text in s, timeout, repr(text))

    def exited(self, timeout=10.0):
        """The command's exit status once it ended."""
        s = self.wait(lambda s: "[exited " in s, timeout, "the command to exit")
        return int(s.split("[exited ", 1)[1].split("]", 1)[0])

    def kill(self):
        self._tmux("kill-server", check=False)
        # the server leaves its socket file behind
        path = os.path.join(os.environ.get("TMUX_TMPDIR", "/tmp"), "tmux-%d" % os.getuid(), self.sock)
        if os.path.exists(path):
            os.unlink(path)


def have_tmux():
    return shutil.which("tmux") is not None

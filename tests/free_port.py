#!/usr/bin/env python3
"""Prints a port on 127.0.0.1 that nothing listens on, for a test to hand to a
server it starts.

Picked at random below the kernel's ephemeral range (ip_local_port_range), so
the outgoing connections of tests running alongside never take it between
this check and the server's bind; tests/reeld_process.hpp follows the same
rule."""
import random
import socket


def ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    high = max(ephemeral_low() - 1, 11000)
    for _ in range(200):
        p = random.randrange(10000, high)
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


if __name__ == "__main__":
    print(free_port())

#!/bin/sh
# Stands in for an emulator that crashes: dies of SIGSEGV.
kill -SEGV $$

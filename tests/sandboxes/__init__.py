"""Tests of runplane.sandboxes: real processes, real files, no mocks."""

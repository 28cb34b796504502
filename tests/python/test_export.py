"""End-to-end tests of `lathe export` (placeholder; being written)."""
import unittest

if __name__ == "__main__":
    unittest.main()

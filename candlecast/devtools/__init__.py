"""The local Binance-shaped exchange emulator and the seeded synthetic market, for the demo and the tests.

They let the real ccxt client run offline against 127.0.0.1. May import the leaves only.
"""

"""Core logic of Starling: pure functions over plain data; no faust, aiohttp or database clients."""

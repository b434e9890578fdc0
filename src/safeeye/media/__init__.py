"""Decoding images and video into analysable frames, with limits against hostile files."""

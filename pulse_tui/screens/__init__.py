"""Screens of the desk: the order list, help, and (separately) the order detail."""

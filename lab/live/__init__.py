"""What a run looks like while it goes: the runner's sample feed, the figures of the last second, and the
terminal view drawn from them.

feed.py is the runner's side (a lock-protected drain of the probe and a snapshot of where the run is),
stats.py the pure figures a view shows, view.py the Rich rendering and the thread that draws it.
"""

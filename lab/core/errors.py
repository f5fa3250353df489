class LabError(Exception):
    """A problem the user can fix: the message is one line naming the problem and the fix."""

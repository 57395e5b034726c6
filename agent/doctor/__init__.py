"""``ragops doctor``: every precondition of the stack, gathered, judged and rendered."""

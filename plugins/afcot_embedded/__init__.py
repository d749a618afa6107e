"""The embedded world: a procedural sound corpus and two reference teachers that run anywhere.

The ALM teacher answers from DSP measurements of the waveform it is given; the scripted LLM teacher
performs the LLM roles of the paper for this corpus' question grammar, from the text it is shown.
They are reference teachers for tests and first contact, not models.
"""

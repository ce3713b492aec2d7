"""brain-plasma's exception types, under the same names, so code written
for ``brain_plasma.exceptions`` catches the same errors from shoal.brain.

Which ones shoal.brain raises, and when:

- BrainNameTypeError: a name that is not a str.
- BrainNamespaceNameError: set_namespace() with fewer than 5 or more than
  15 characters.
- BrainNamespaceRemoveDefaultError: remove_namespace("default").
- BrainNamespaceNotExistError: remove_namespace() of an unknown namespace.
- BrainClientDisconnectedError: any call between sleep() and wake_up(), or
  when no daemon serves the socket.
- BrainLearnNameError / BrainUpdateNameError: storing a new / replacing an
  existing value failed (the store is unchanged; the cause is chained).

BrainNameNotExistError, BrainNameLengthError and BrainRemoveOldNameValueError
exist for imports only: shoal's names have no length limit a namespace
imposes, and replacing a value is one atomic step, so there is no old value
left behind to fail removing. A missing name in recall()/[] is a KeyError,
as in brain-plasma.
"""


class BrainError(Exception):
    """Base class of the shoal.brain (brain-plasma) exceptions."""


class BrainNamespaceNameError(BrainError):
    pass


class BrainNamespaceRemoveDefaultError(BrainError):
    pass


class BrainNamespaceNotExistError(BrainError):
    pass


class BrainNameNotExistError(BrainError):
    pass


class BrainNameLengthError(BrainError):
    pass


class BrainNameTypeError(BrainError):
    pass


class BrainClientDisconnectedError(BrainError):
    pass


class BrainLearnNameError(BrainError):
    pass


class BrainRemoveOldNameValueError(BrainError):
    pass


class BrainUpdateNameError(BrainError):
    pass

"""The errors an operator can act on. Each message names what is wrong, which file, and what to do;
the CLI prints it as one line and exits with the class's code (README: "Exit codes")."""


class OperatorError(Exception):
    """A problem the person running the pipeline can fix; never a bug in the pipeline."""

    exit_code = 1


class BadInput(OperatorError):
    """An argument, a labels file or a path that can't be used as given."""

    exit_code = 2


class ArtifactError(OperatorError):
    """A model file or registry record that is missing, unreadable or not what it claims to be."""

    exit_code = 3


class NotFound(OperatorError):
    """A model version that no record knows."""

    exit_code = 4


class PromotionRefused(OperatorError):
    """`promote` without --force: the candidate failed the promotion gate."""

    exit_code = 5


class DiskFull(OperatorError):
    """A write that found no space left on its device: what it would have replaced is intact."""

    exit_code = 6


class MismatchedInputs(OperatorError):
    """Upstream assets that were made from different label versions, read together."""

    exit_code = 1

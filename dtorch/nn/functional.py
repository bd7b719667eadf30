"""dtorch.nn.functional: the functional forms of every layer, activation and loss."""
from ._functional.linear import *  # noqa: F401,F403
from ._functional.conv import *  # noqa: F401,F403
from ._functional.pooling import *  # noqa: F401,F403
from ._functional.vision import *  # noqa: F401,F403
from ._functional.activation import *  # noqa: F401,F403
from ._functional.normalization import *  # noqa: F401,F403
from ._functional.dropout import *  # noqa: F401,F403
from ._functional.sparse import *  # noqa: F401,F403
from ._functional.loss import *  # noqa: F401,F403
from ._functional.attention import *  # noqa: F401,F403
from ._functional.shuffle import *  # noqa: F401,F403
from ._functional.distance import *  # noqa: F401,F403
from ._functional.margin_loss import *  # noqa: F401,F403
from ._functional.bag import *  # noqa: F401,F403
from ._functional.composite_norm import *  # noqa: F401,F403
from ._functional.unpool import *  # noqa: F401,F403
from ._functional.alpha_dropout import *  # noqa: F401,F403

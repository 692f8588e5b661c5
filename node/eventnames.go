package node

// Event type names (temporary: to be replaced by the bus's constants).
const (
	evCreate    = "create"
	evReplace   = "replace"
	evCancel    = "cancel"
	evExecute   = "execute"
	evSuccess   = "success"
	evFail      = "fail"
	evEvict     = "evict"
	evReady     = "ready"
	evRecover   = "recover"
	evRebalance = "rebalance"
	evPurge     = "purge"
	evShutdown  = "shutdown"
	evJoin      = "join"
	evLeave     = "leave"
)

package command

import (
	"github.com/memcluster/memcluster/node/metrics"
	"github.com/memcluster/memcluster/protocol"
)

// textFamily returns the latency family of a text command.
func textFamily(cmd protocol.Command) metrics.Family {
	switch cmd {
	case protocol.CmdGet, protocol.CmdGets, protocol.CmdGat, protocol.CmdGats, protocol.CmdMetaGet:
		return metrics.FamilyGet
	case protocol.CmdSet, protocol.CmdAdd, protocol.CmdReplace, protocol.CmdAppend, protocol.CmdPrepend, protocol.CmdCas, protocol.CmdMetaSet:
		return metrics.FamilySet
	case protocol.CmdDelete, protocol.CmdMetaDelete:
		return metrics.FamilyDelete
	case protocol.CmdIncr, protocol.CmdDecr, protocol.CmdMetaArith:
		return metrics.FamilyArith
	case protocol.CmdTouch:
		return metrics.FamilyTouch
	}
	return metrics.FamilyOther
}

// textProtocol returns the latency protocol of a text command: meta for
// the meta commands, text for the others.
func textProtocol(cmd protocol.Command) metrics.Protocol {
	switch cmd {
	case protocol.CmdMetaGet, protocol.CmdMetaSet, protocol.CmdMetaDelete, protocol.CmdMetaArith, protocol.CmdMetaNoop, protocol.CmdMetaDebug:
		return metrics.ProtocolMeta
	}
	return metrics.ProtocolText
}

// binaryFamily returns the latency family of a binary opcode.
func binaryFamily(op protocol.BinaryOpcode) metrics.Family {
	switch op.Loud() {
	case protocol.OpGet, protocol.OpGetK, protocol.OpGAT, protocol.OpGATK:
		return metrics.FamilyGet
	case protocol.OpSet, protocol.OpAdd, protocol.OpReplace, protocol.OpAppend, protocol.OpPrepend:
		return metrics.FamilySet
	case protocol.OpDelete:
		return metrics.FamilyDelete
	case protocol.OpIncrement, protocol.OpDecrement:
		return metrics.FamilyArith
	case protocol.OpTouch:
		return metrics.FamilyTouch
	}
	return metrics.FamilyOther
}

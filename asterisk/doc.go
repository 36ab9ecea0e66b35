// Package asterisk is the Asterisk driver of callbridge: it speaks AMI (package ami) to an
// Asterisk 22 PBX with app_queue and chan_pjsip, translates its events into normalised
// switch events (Tracker), resynchronises after every connect (CoreShowChannels,
// QueueStatus, DeviceStateList) and carries out switch commands with AMI actions.
//
// Every protocol fact used here was read from the recordings of a real Asterisk 22 in
// shared/fixtures/asterisk-22 and its README; doc comments name the recording. The mapping of
// Asterisk channels onto callbridge's call model:
//
//   - A conversation is named by Linkedid (PBXCallID), the Uniqueid of its first channel.
//   - A party is a telset channel (PJSIP/1001-… is device 1001) or a trunk leg (an outside
//     party whose Device is its number). Local channels are never parties: a Local ;1/;2 pair
//     stands for the telset its ;2 half dials.
//   - An Atxfer consultation (Local/<target>@<transfer context>-…;1/;2) shares the original
//     call's Linkedid but is a separate conversation named by its ;1 half's Uniqueid, with
//     ConsultOf = the original Linkedid (DESIGN.md §2).
//
// See docs/asterisk.md for the Asterisk configuration callbridge needs.
package asterisk

// DefaultTransferContext is the dialplan context of BlindTransfer and Atxfer targets when
// Config.TransferContext is empty (the recordings' [transfer-targets]).
const DefaultTransferContext = "transfer-targets"

// SPDX-License-Identifier: MIT
// Test contracts for x402's `batch-settlement` scheme, written for sluice's tests from the scheme's spec
// (x402-foundation/x402 specs/schemes/batch-settlement/scheme_batch_settlement_evm.md) and the ABI @x402/evm 2.27.0
// calls. NOT audited and not the foundation's contract: the tests copy their runtime code to the canonical addresses
// (anvil_setCode) because @x402/evm's facilitator and client hard-code them. Nothing here reads constructor state:
// code copied to another address must behave the same there (EIP-712 domains use address(this) and block.chainid).
pragma solidity ^0.8.20;

interface IERC20Min {
    function balanceOf(address owner) external view returns (uint256);
    function transfer(address to, uint256 value) external returns (bool);
}

interface IERC3009Receive {
    function receiveWithAuthorization(address from, address to, uint256 value, uint256 validAfter, uint256 validBefore,
        bytes32 nonce, bytes memory signature) external;
}

interface IERC1271 {
    function isValidSignature(bytes32 hash, bytes memory signature) external view returns (bytes4);
}

/** What a deposit collector does for x402BatchSettlement.deposit: pull `amount` of `token` from `payer` to msg.sender. */
interface IDepositCollector {
    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata data) external;
}

struct ChannelConfig {
    address payer;
    address payerAuthorizer;
    address receiver;
    address receiverAuthorizer;
    address token;
    uint40 withdrawDelay;
    bytes32 salt;
}

struct Voucher {
    ChannelConfig channel;
    uint128 maxClaimableAmount;
}

struct VoucherClaim {
    Voucher voucher;
    bytes signature;
    uint128 totalClaimed;
}

contract TestBatchSettlement {
    uint40 public constant MIN_WITHDRAW_DELAY = 900;
    uint40 public constant MAX_WITHDRAW_DELAY = 2592000;
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    bytes32 public constant CHANNEL_CONFIG_TYPEHASH = keccak256(
        "ChannelConfig(address payer,address payerAuthorizer,address receiver,address receiverAuthorizer,address token,uint40 withdrawDelay,bytes32 salt)");
    bytes32 private constant VOUCHER_TYPEHASH = keccak256("Voucher(bytes32 channelId,uint128 maxClaimableAmount)");
    bytes32 private constant REFUND_TYPEHASH = keccak256("Refund(bytes32 channelId,uint256 nonce,uint128 amount)");
    bytes32 private constant CLAIM_ENTRY_TYPEHASH = keccak256("ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");
    bytes32 private constant CLAIM_BATCH_TYPEHASH = keccak256(
        "ClaimBatch(ClaimEntry[] claims)ClaimEntry(bytes32 channelId,uint128 maxClaimableAmount,uint128 totalClaimed)");

    struct Channel { uint128 balance; uint128 totalClaimed; }
    struct Withdrawal { uint128 amount; uint40 initiatedAt; }
    struct ReceiverTotals { uint128 totalClaimed; uint128 totalSettled; }

    mapping(bytes32 => Channel) public channels;
    mapping(bytes32 => Withdrawal) public pendingWithdrawals;
    mapping(address => mapping(address => ReceiverTotals)) public receivers;
    mapping(bytes32 => uint256) public refundNonce;

    event ChannelCreated(bytes32 indexed channelId, ChannelConfig config);
    event ChannelClosed(bytes32 indexed channelId, ChannelConfig config);
    event Deposited(bytes32 indexed channelId, address indexed collector, uint128 amount);
    event Claimed(bytes32 indexed channelId, uint128 totalClaimed, uint128 delta);
    event Settled(address indexed receiver, address indexed token, address indexed sender, uint128 amount);
    event WithdrawInitiated(bytes32 indexed channelId, uint128 amount, uint40 initiatedAt);
    event Withdrawn(bytes32 indexed channelId, uint128 amount);
    event Refunded(bytes32 indexed channelId, uint128 amount, uint256 nonce);

    error InvalidWithdrawDelay();
    error ZeroReceiverAuthorizer();
    error ZeroAmount();
    error DepositNotReceived();
    error InvalidSignature();
    error NotAuthorized();
    error ClaimExceedsVoucher();
    error ClaimExceedsBalance();
    error MixedAuthorizers();
    error WithdrawExceedsAvailable();
    error NoPendingWithdrawal();
    error WithdrawDelayNotElapsed();
    error InvalidRefundNonce();
    error TransferFailed();

    // ---- EIP-712 ----

    function _domainSeparator() private view returns (bytes32) {
        return keccak256(abi.encode(
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
            keccak256("x402 Batch Settlement"), keccak256("1"), block.chainid, address(this)));
    }

    function _hashTyped(bytes32 structHash) private view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", _domainSeparator(), structHash));
    }

    function getChannelId(ChannelConfig calldata c) public view returns (bytes32) {
        return _hashTyped(keccak256(abi.encode(CHANNEL_CONFIG_TYPEHASH, c.payer, c.payerAuthorizer, c.receiver,
            c.receiverAuthorizer, c.token, c.withdrawDelay, c.salt)));
    }

    function getVoucherDigest(bytes32 channelId, uint128 maxClaimableAmount) public view returns (bytes32) {
        return _hashTyped(keccak256(abi.encode(VOUCHER_TYPEHASH, channelId, maxClaimableAmount)));
    }

    function getRefundDigest(bytes32 channelId, uint256 nonce, uint128 amount) public view returns (bytes32) {
        return _hashTyped(keccak256(abi.encode(REFUND_TYPEHASH, channelId, nonce, amount)));
    }

    function getClaimBatchDigest(VoucherClaim[] calldata voucherClaims) public view returns (bytes32) {
        bytes32[] memory entries = new bytes32[](voucherClaims.length);
        for (uint256 i = 0; i < voucherClaims.length; i++) {
            VoucherClaim calldata vc = voucherClaims[i];
            entries[i] = keccak256(abi.encode(CLAIM_ENTRY_TYPEHASH, getChannelId(vc.voucher.channel),
                vc.voucher.maxClaimableAmount, vc.totalClaimed));
        }
        return _hashTyped(keccak256(abi.encode(CLAIM_BATCH_TYPEHASH, keccak256(abi.encodePacked(entries)))));
    }

    /** ECDSA with EIP-2's low-s rule (a high-s twin is refused, as OpenZeppelin's ECDSA does). */
    function _recover(bytes32 digest, bytes memory signature) private pure returns (address) {
        if (signature.length != 65) revert InvalidSignature();
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        if (v < 27) v += 27;
        if ((v != 27 && v != 28) || uint256(s) > HALF_N) revert InvalidSignature();
        address signer = ecrecover(digest, v, r, s);
        if (signer == address(0)) revert InvalidSignature();
        return signer;
    }

    /** The spec's rule: payerAuthorizer set → ECDSA against it only; zero → the payer (EIP-1271 if it has code). */
    function _checkVoucher(ChannelConfig calldata c, bytes32 digest, bytes memory signature) private view {
        if (c.payerAuthorizer != address(0)) {
            if (_recover(digest, signature) != c.payerAuthorizer) revert InvalidSignature();
        } else if (c.payer.code.length > 0) {
            if (IERC1271(c.payer).isValidSignature(digest, signature) != IERC1271.isValidSignature.selector) revert InvalidSignature();
        } else if (_recover(digest, signature) != c.payer) {
            revert InvalidSignature();
        }
    }

    // ---- deposit ----

    function deposit(ChannelConfig calldata config, uint128 amount, address collector, bytes calldata collectorData) external {
        if (config.withdrawDelay < MIN_WITHDRAW_DELAY || config.withdrawDelay > MAX_WITHDRAW_DELAY) revert InvalidWithdrawDelay();
        if (config.receiverAuthorizer == address(0)) revert ZeroReceiverAuthorizer();
        if (amount == 0) revert ZeroAmount();
        bytes32 id = getChannelId(config);
        uint256 before = IERC20Min(config.token).balanceOf(address(this));
        IDepositCollector(collector).collect(config.payer, config.token, amount, id, collectorData);
        // Whatever the collector is, the tokens must have arrived.
        if (IERC20Min(config.token).balanceOf(address(this)) - before != amount) revert DepositNotReceived();
        Channel storage ch = channels[id];
        if (ch.balance == 0 && ch.totalClaimed == 0) emit ChannelCreated(id, config);
        ch.balance += amount;
        emit Deposited(id, collector, amount);
    }

    // ---- claims and settle ----

    function claim(VoucherClaim[] calldata voucherClaims) external {
        for (uint256 i = 0; i < voucherClaims.length; i++) {
            ChannelConfig calldata c = voucherClaims[i].voucher.channel;
            if (msg.sender != c.receiver && msg.sender != c.receiverAuthorizer) revert NotAuthorized();
        }
        _claim(voucherClaims);
    }

    function claimWithSignature(VoucherClaim[] calldata voucherClaims, bytes calldata authorizerSignature) external {
        if (voucherClaims.length == 0) return;
        address authorizer = voucherClaims[0].voucher.channel.receiverAuthorizer;
        for (uint256 i = 1; i < voucherClaims.length; i++) {
            if (voucherClaims[i].voucher.channel.receiverAuthorizer != authorizer) revert MixedAuthorizers();
        }
        if (_recover(getClaimBatchDigest(voucherClaims), authorizerSignature) != authorizer) revert InvalidSignature();
        _claim(voucherClaims);
    }

    function _claim(VoucherClaim[] calldata voucherClaims) private {
        for (uint256 i = 0; i < voucherClaims.length; i++) {
            VoucherClaim calldata vc = voucherClaims[i];
            ChannelConfig calldata c = vc.voucher.channel;
            bytes32 id = getChannelId(c);
            _checkVoucher(c, getVoucherDigest(id, vc.voucher.maxClaimableAmount), vc.signature);
            if (vc.totalClaimed > vc.voucher.maxClaimableAmount) revert ClaimExceedsVoucher();
            Channel storage ch = channels[id];
            if (vc.totalClaimed > ch.balance) revert ClaimExceedsBalance();
            // Cumulative: a claim at or below what is claimed already changes nothing.
            if (vc.totalClaimed <= ch.totalClaimed) continue;
            uint128 delta = vc.totalClaimed - ch.totalClaimed;
            ch.totalClaimed = vc.totalClaimed;
            receivers[c.receiver][c.token].totalClaimed += delta;
            emit Claimed(id, vc.totalClaimed, delta);
        }
    }

    function settle(address receiver, address token) external {
        ReceiverTotals storage t = receivers[receiver][token];
        uint128 amount = t.totalClaimed - t.totalSettled;
        t.totalSettled = t.totalClaimed;
        if (amount > 0) _send(token, receiver, amount);
        emit Settled(receiver, token, msg.sender, amount);
    }

    // ---- the payer's timed withdrawal ----

    function initiateWithdraw(ChannelConfig calldata config, uint128 amount) external {
        if (msg.sender != config.payer && msg.sender != config.payerAuthorizer) revert NotAuthorized();
        bytes32 id = getChannelId(config);
        Channel storage ch = channels[id];
        if (amount == 0) revert ZeroAmount();
        if (amount > ch.balance - ch.totalClaimed) revert WithdrawExceedsAvailable();
        pendingWithdrawals[id] = Withdrawal(amount, uint40(block.timestamp));
        emit WithdrawInitiated(id, amount, uint40(block.timestamp));
    }

    function finalizeWithdraw(ChannelConfig calldata config) external {
        if (msg.sender != config.payer && msg.sender != config.payerAuthorizer) revert NotAuthorized();
        bytes32 id = getChannelId(config);
        Withdrawal memory w = pendingWithdrawals[id];
        if (w.initiatedAt == 0) revert NoPendingWithdrawal();
        if (block.timestamp < uint256(w.initiatedAt) + config.withdrawDelay) revert WithdrawDelayNotElapsed();
        delete pendingWithdrawals[id];
        Channel storage ch = channels[id];
        uint128 available = ch.balance - ch.totalClaimed;
        uint128 amount = w.amount < available ? w.amount : available;
        ch.balance -= amount;
        if (amount > 0) _send(config.token, config.payer, amount);
        emit Withdrawn(id, amount);
        if (ch.balance == ch.totalClaimed && ch.totalClaimed == 0) emit ChannelClosed(id, config);
    }

    // ---- cooperative refund ----

    function refund(ChannelConfig calldata config, uint128 amount) external {
        if (msg.sender != config.receiver && msg.sender != config.receiverAuthorizer) revert NotAuthorized();
        _refund(config, getChannelId(config), amount);
    }

    function refundWithSignature(ChannelConfig calldata config, uint128 amount, uint256 nonce, bytes calldata receiverAuthorizerSignature) external {
        bytes32 id = getChannelId(config);
        if (nonce != refundNonce[id]) revert InvalidRefundNonce();
        if (_recover(getRefundDigest(id, nonce, amount), receiverAuthorizerSignature) != config.receiverAuthorizer) revert InvalidSignature();
        _refund(config, id, amount);
    }

    function _refund(ChannelConfig calldata config, bytes32 id, uint128 amount) private {
        if (amount == 0) revert ZeroAmount();
        // The spec: the nonce moves first, so even a refund that moves nothing spends it.
        uint256 nonce = refundNonce[id]++;
        Channel storage ch = channels[id];
        uint128 available = ch.balance - ch.totalClaimed;
        uint128 sent = amount < available ? amount : available;
        if (sent == 0) return;
        ch.balance -= sent;
        Withdrawal storage w = pendingWithdrawals[id];
        if (w.initiatedAt != 0) {
            if (sent >= w.amount) delete pendingWithdrawals[id];
            else w.amount -= sent;
        }
        _send(config.token, config.payer, sent);
        emit Refunded(id, sent, nonce);
        if (ch.balance == ch.totalClaimed && ch.totalClaimed == 0) emit ChannelClosed(id, config);
    }

    function multicall(bytes[] calldata data) external returns (bytes[] memory results) {
        results = new bytes[](data.length);
        for (uint256 i = 0; i < data.length; i++) {
            (bool ok, bytes memory out) = address(this).delegatecall(data[i]);
            if (!ok) assembly { revert(add(out, 0x20), mload(out)) }
            results[i] = out;
        }
    }

    function _send(address token, address to, uint256 amount) private {
        if (!IERC20Min(token).transfer(to, amount)) revert TransferFailed();
    }
}

/** Pulls an ERC-3009 deposit: receiveWithAuthorization(payer → this, nonce = keccak256(channelId, salt)), then forwards. */
contract TestERC3009DepositCollector is IDepositCollector {
    address public constant SETTLEMENT = 0x4020074e9dF2ce1deE5A9C1b5c3f541D02a10003;

    function collect(address payer, address token, uint256 amount, bytes32 channelId, bytes calldata data) external {
        require(msg.sender == SETTLEMENT, "collector: only the settlement contract");
        (uint256 validAfter, uint256 validBefore, uint256 salt, bytes memory signature) = abi.decode(data, (uint256, uint256, uint256, bytes));
        bytes32 nonce = keccak256(abi.encode(channelId, salt));
        IERC3009Receive(token).receiveWithAuthorization(payer, address(this), amount, validAfter, validBefore, nonce, signature);
        require(IERC20Min(token).transfer(msg.sender, amount), "collector: forward failed");
    }
}

// Multicall3's tryAggregate, which the x402 EVM package reads channel state through (at 0xcA11bde0…).
contract TestMulticall3 {
    struct Call { address target; bytes callData; }
    struct Result { bool success; bytes returnData; }

    function tryAggregate(bool requireSuccess, Call[] calldata calls) external payable returns (Result[] memory returnData) {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; i++) {
            (bool ok, bytes memory out) = calls[i].target.call(calls[i].callData);
            require(ok || !requireSuccess, "Multicall3: call failed");
            returnData[i] = Result(ok, out);
        }
    }
}

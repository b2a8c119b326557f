// SPDX-License-Identifier: MIT
// sluice's reference escrow for pay-per-use sessions (tests only; not audited). It fixes the x402r sessions plan:
//  - the deposit is tied to the session: createSession pulls it with receiveWithAuthorization (only this contract can
//    submit it) and the authorization's nonce is DERIVED from the session's terms, so the buyer's one signature covers
//    seller, price, units and duration; a facilitator that alters any term makes the token refuse the signature;
//  - consumption is cumulative and buyer-signed (EIP-712 UsageReceipt, checked here): replaying an old receipt cannot
//    charge twice, a retried consume is a no-op;
//  - the buyer cannot close; they can only reclaim after expiresAt + reclaimDelay, which leaves the seller that long
//    to record the last receipt; recorded consumption is paid to the seller on every path.
pragma solidity ^0.8.20;

interface IERC3009 {
    function receiveWithAuthorization(address from, address to, uint256 value, uint256 validAfter,
        uint256 validBefore, bytes32 nonce, bytes memory signature) external;
    function transfer(address to, uint256 value) external returns (bool);
}

contract SessionEscrow {
    enum Status { None, Active, Closed }

    struct Session {
        address token;      // slot 0
        uint64 expiresAt;
        Status status;
        address buyer;      // slot 1
        uint64 maxUnits;
        address seller;     // slot 2
        uint64 units;       // cumulative units recorded from buyer receipts
        uint128 price;      // slot 3: token units per unit
        uint128 deposit;
    }

    struct Terms {
        address seller;
        uint128 pricePerUnit;
        uint64 maxUnits;
        uint64 duration;
        bytes32 salt;
    }

    bytes32 public constant SESSION_TERMS_TYPEHASH = keccak256(
        "SessionTerms(address escrow,address seller,uint256 pricePerUnit,uint256 maxUnits,uint256 duration,bytes32 salt)");
    bytes32 public constant USAGE_RECEIPT_TYPEHASH = keccak256(
        "UsageReceipt(bytes32 sessionId,uint256 cumulativeUnits,uint256 nonce)");
    uint256 private constant HALF_N = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    bytes32 public immutable DOMAIN_SEPARATOR;
    uint64 public immutable reclaimDelay;

    mapping(bytes32 => Session) public sessions;
    /// seller => operator => may close (the facilitator's account submits for the seller).
    mapping(address => mapping(address => bool)) public operators;

    event SessionCreated(bytes32 indexed sessionId, address indexed buyer, address indexed seller, address token,
        uint256 deposit, uint256 pricePerUnit, uint256 maxUnits, uint256 expiresAt);
    event Consumed(bytes32 indexed sessionId, uint256 cumulativeUnits);
    event SessionClosed(bytes32 indexed sessionId, uint256 units, uint256 sellerAmount, uint256 buyerRefund, bool reclaimed);
    event OperatorSet(address indexed seller, address indexed operator, bool allowed);

    constructor(uint64 reclaimDelay_) {
        reclaimDelay = reclaimDelay_;
        DOMAIN_SEPARATOR = keccak256(abi.encode(
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
            keccak256("SessionEscrow"), keccak256("1"), block.chainid, address(this)));
    }

    /// The EIP-3009 nonce a buyer must sign for these terms: binds the deposit to them.
    function termsNonce(Terms calldata t) public view returns (bytes32) {
        return keccak256(abi.encode(SESSION_TERMS_TYPEHASH, address(this), t.seller, t.pricePerUnit, t.maxUnits,
            t.duration, t.salt));
    }

    function sessionIdOf(address token, address buyer, bytes32 nonce) public pure returns (bytes32) {
        return keccak256(abi.encode(token, buyer, nonce));
    }

    function setOperator(address operator, bool allowed) external {
        operators[msg.sender][operator] = allowed;
        emit OperatorSet(msg.sender, operator, allowed);
    }

    function createSession(address token, address buyer, uint256 value, uint256 validAfter, uint256 validBefore,
        Terms calldata t, bytes calldata signature) external returns (bytes32 sessionId) {
        require(t.seller != address(0) && t.maxUnits > 0 && t.duration > 0, "SessionEscrow: bad terms");
        require(value >= uint256(t.pricePerUnit) * t.maxUnits && value <= type(uint128).max,
            "SessionEscrow: deposit below price x units");
        bytes32 nonce = termsNonce(t);
        sessionId = sessionIdOf(token, buyer, nonce);
        require(sessions[sessionId].status == Status.None, "SessionEscrow: session exists");
        // Reverts unless `buyer` signed exactly (this escrow, value, window, nonce of these terms).
        IERC3009(token).receiveWithAuthorization(buyer, address(this), value, validAfter, validBefore, nonce, signature);
        sessions[sessionId] = Session({
            token: token, expiresAt: uint64(block.timestamp) + t.duration, status: Status.Active,
            buyer: buyer, maxUnits: t.maxUnits, seller: t.seller, units: 0,
            price: t.pricePerUnit, deposit: uint128(value)
        });
        emit SessionCreated(sessionId, buyer, t.seller, token, value, t.pricePerUnit, t.maxUnits,
            uint256(block.timestamp) + t.duration);
    }

    /// Records a buyer-signed cumulative receipt. Anyone may submit one; a receipt not above the recorded total is a
    /// no-op (idempotent retries), so replays cannot charge twice.
    function consume(bytes32 sessionId, uint256 cumulativeUnits, uint256 nonce, bytes calldata signature) public {
        Session storage s = sessions[sessionId];
        require(s.status == Status.Active, "SessionEscrow: session not active");
        if (cumulativeUnits <= s.units) return;
        require(cumulativeUnits <= s.maxUnits, "SessionEscrow: units above maxUnits");
        bytes32 digest = keccak256(abi.encodePacked("\x19\x01", DOMAIN_SEPARATOR,
            keccak256(abi.encode(USAGE_RECEIPT_TYPEHASH, sessionId, cumulativeUnits, nonce))));
        require(_recover(digest, signature) == s.buyer, "SessionEscrow: receipt not signed by the buyer");
        s.units = uint64(cumulativeUnits);
        emit Consumed(sessionId, cumulativeUnits);
    }

    /// The seller (or its operator) closes, optionally recording a final receipt in the same transaction.
    function close(bytes32 sessionId, uint256 cumulativeUnits, uint256 nonce, bytes calldata signature) external {
        Session storage s = sessions[sessionId];
        require(msg.sender == s.seller || operators[s.seller][msg.sender], "SessionEscrow: only the seller closes");
        if (signature.length != 0) consume(sessionId, cumulativeUnits, nonce, signature);
        _settle(sessionId, s, false);
    }

    /// The buyer's way out if the seller never closes: after expiresAt + reclaimDelay anyone may settle; recorded
    /// consumption still goes to the seller.
    function reclaim(bytes32 sessionId) external {
        Session storage s = sessions[sessionId];
        require(s.status == Status.Active, "SessionEscrow: session not active");
        require(block.timestamp >= uint256(s.expiresAt) + reclaimDelay, "SessionEscrow: reclaim not yet open");
        _settle(sessionId, s, true);
    }

    function _settle(bytes32 sessionId, Session storage s, bool reclaimed) private {
        require(s.status == Status.Active, "SessionEscrow: session not active");
        s.status = Status.Closed;
        uint256 sellerAmount = uint256(s.units) * s.price;
        uint256 refund = uint256(s.deposit) - sellerAmount;
        if (sellerAmount > 0) require(IERC3009(s.token).transfer(s.seller, sellerAmount), "SessionEscrow: transfer");
        if (refund > 0) require(IERC3009(s.token).transfer(s.buyer, refund), "SessionEscrow: transfer");
        emit SessionClosed(sessionId, s.units, sellerAmount, refund, reclaimed);
    }

    function _recover(bytes32 digest, bytes calldata signature) private pure returns (address signer) {
        require(signature.length == 65, "SessionEscrow: bad signature");
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (v < 27) v += 27;
        require((v == 27 || v == 28) && uint256(s) <= HALF_N, "SessionEscrow: bad signature");
        signer = ecrecover(digest, v, r, s);
        require(signer != address(0), "SessionEscrow: bad signature");
    }
}

-- Argo CD health check for kubevox.dev/VoiceAgentTest: a conversation-test suite is Healthy when
-- the agent's current configuration passed it, Degraded when a case failed or the run could not
-- judge (Error), Progressing while it runs or waits for its VoiceAgent (Pending).
local health_status = {}
health_status.status = "Progressing"
health_status.message = "Waiting for VoiceAgentTest to report status..."

if obj.metadata ~= nil and obj.metadata.deletionTimestamp ~= nil then
  health_status.message = "VoiceAgentTest is being deleted"
  return health_status
end

if obj.status == nil then
  return health_status
end

local passed = nil
if obj.status.conditions ~= nil then
  for _, condition in ipairs(obj.status.conditions) do
    if condition.type == "Passed" then
      passed = condition
    end
  end
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
if generation ~= nil then
  local stale = obj.status.observedGeneration == nil or obj.status.observedGeneration ~= generation
  if passed ~= nil and passed.observedGeneration ~= nil and passed.observedGeneration ~= generation then
    stale = true
  end
  if stale then
    health_status.message = "Waiting for the operator to observe generation " .. tostring(generation)
    return health_status
  end
end

local on = ""
if obj.status.configHash ~= nil then
  on = " on configuration " .. obj.status.configHash
end
local phase = obj.status.phase
if phase == "Passed" then
  health_status.status = "Healthy"
  health_status.message = "All " .. tostring(obj.status.passed or 0) .. " cases passed" .. on
  return health_status
end
if phase == "Failed" then
  local failed = obj.status.failed or 0
  local total = failed + (obj.status.passed or 0)
  health_status.status = "Degraded"
  health_status.message = tostring(failed) .. " of " .. tostring(total) .. " cases failed" .. on
  return health_status
end
if phase == "Error" then
  health_status.status = "Degraded"
  health_status.message = "TestsError: " .. (obj.status.message or "the run could not judge the agent")
  return health_status
end
if passed ~= nil and passed.message ~= nil and passed.message ~= "" then
  health_status.message = (passed.reason or "Running") .. ": " .. passed.message
end
return health_status

# Both wait for versioning: replication and Object Lock settings elsewhere need it in place.
output "id" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.id
  depends_on  = [aws_s3_bucket_versioning.this]
}

output "arn" {
  description = "Bucket ARN."
  value       = aws_s3_bucket.this.arn
  depends_on  = [aws_s3_bucket_versioning.this]
}
